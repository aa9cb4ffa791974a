package bootstrap

import (
	"bytes"
	"slices"
	"sort"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// workingIndex holds the working dispatchers of each table and mode sorted by span, and finds
// those overlapping a span. Reported dispatchers may overlap each other (that is what conflicts
// are), so each group also keeps the running maximum of end keys: a backwards scan stops where
// no earlier span can reach.
type workingIndex map[groupKey]*indexedGroup

type indexedGroup struct {
	ps     []Placement
	maxEnd [][]byte // maxEnd[i]: the highest end key among ps[0..i]
}

// reserve sizes each group for the statuses of responses that may join it, so a million
// appends do not regrow the groups.
func (idx workingIndex) reserve(responses map[string]*heartbeatpb.MaintainerBootstrapResponse) {
	counts := make(map[groupKey]int)
	for _, resp := range responses {
		if resp == nil {
			continue
		}
		for i := range resp.Dispatchers {
			st := &resp.Dispatchers[i]
			counts[groupKey{st.Span.TableId, st.Mode}]++
		}
	}
	for g, n := range counts {
		idx[g] = &indexedGroup{ps: make([]Placement, 0, n)}
	}
}

// add appends a working dispatcher to its group; seal sorts the groups once all are in.
func (idx workingIndex) add(p Placement) {
	g := groupKey{p.Span.TableId, p.Mode}
	ig := idx[g]
	if ig == nil {
		ig = &indexedGroup{}
		idx[g] = ig
	}
	ig.ps = append(ig.ps, p)
}

func (idx workingIndex) seal() {
	for _, ig := range idx {
		ig.ps = sortBySpan(ig.ps)
		ig.maxEnd = make([][]byte, len(ig.ps))
		for i := range ig.ps {
			ig.maxEnd[i] = ig.ps[i].Span.EndKey
			if i > 0 && bytes.Compare(ig.maxEnd[i-1], ig.maxEnd[i]) > 0 {
				ig.maxEnd[i] = ig.maxEnd[i-1]
			}
		}
	}
}

// find returns a dispatcher of group g overlapping s for which skip is false.
func (idx workingIndex) find(g groupKey, s heartbeatpb.TableSpan, skip func(Placement) bool) (Placement, bool) {
	ig := idx[g]
	if ig == nil {
		return Placement{}, false
	}
	i := sort.Search(len(ig.ps), func(i int) bool { return bytes.Compare(ig.ps[i].Span.StartKey, s.EndKey) >= 0 })
	for j := i - 1; j >= 0 && bytes.Compare(ig.maxEnd[j], s.StartKey) > 0; j-- {
		if p := ig.ps[j]; bytes.Compare(p.Span.EndKey, s.StartKey) > 0 && !skip(p) {
			return p, true
		}
	}
	return Placement{}, false
}

func cmpSpan(a, b Placement) int { return span.Compare(a.Span, b.Span) }

// sortBySpan returns ps sorted by span. A group is the concatenation of every node's report,
// and each node reports in dispatcher ID order, which usually follows span order: so the list
// is a few sorted runs, merged pairwise. Many runs (no such order) fall back to a sort of
// indexes; placements are large, so moving 4-byte indexes beats moving them.
func sortBySpan(ps []Placement) []Placement {
	var runs []int // start of each sorted run
	for i := range ps {
		if i == 0 || cmpSpan(ps[i-1], ps[i]) > 0 {
			runs = append(runs, i)
		}
	}
	if len(runs) <= 1 {
		return ps
	}
	if len(runs) > 32 {
		order := make([]int32, len(ps))
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortFunc(order, func(a, b int32) int { return cmpSpan(ps[a], ps[b]) })
		out := make([]Placement, len(ps))
		for i, o := range order {
			out[i] = ps[o]
		}
		return out
	}
	buf := make([]Placement, len(ps))
	for len(runs) > 1 {
		var next []int
		for r := 0; r < len(runs); r += 2 {
			lo, mid, hi := runs[r], len(ps), len(ps)
			if r+1 < len(runs) {
				mid = runs[r+1]
			}
			if r+2 < len(runs) {
				hi = runs[r+2]
			}
			mergeRuns(buf[lo:hi], ps[lo:mid], ps[mid:hi])
			next = append(next, lo)
		}
		ps, buf, runs = buf, ps, next
	}
	return ps
}

func mergeRuns(dst, a, b []Placement) {
	i, j, k := 0, 0, 0
	for i < len(a) && j < len(b) {
		if cmpSpan(b[j], a[i]) < 0 {
			dst[k] = b[j]
			j++
		} else {
			dst[k] = a[i]
			i++
		}
		k++
	}
	k += copy(dst[k:], a[i:])
	copy(dst[k:], b[j:])
}

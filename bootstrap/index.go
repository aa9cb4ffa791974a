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
//
// The groups reserve sized lie in one array, in group order (sortGroups), so that place can
// write the plan's Replicating list over it as it reads: at a million spans a second array of
// placements was 100 MB allocated and faulted in during a restore.
type workingIndex struct {
	groups map[groupKey]*indexedGroup
	all    []Placement // the reserved groups, back to back in group order
}

type indexedGroup struct {
	ps     []Placement
	maxEnd [][]byte // maxEnd[i]: the highest end key among ps[0..i]
	// own: ps has an array of its own, not a part of all (a group reserve did not size).
	own bool
}

func newWorkingIndex() workingIndex {
	return workingIndex{groups: make(map[groupKey]*indexedGroup)}
}

// reserve sizes each group for the statuses of responses that may join it, so a million
// appends do not regrow the groups, and lays the groups out in one array.
func (idx *workingIndex) reserve(responses map[string]*heartbeatpb.MaintainerBootstrapResponse) {
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
	keys := make([]groupKey, 0, len(counts))
	total := 0
	for g, n := range counts {
		keys = append(keys, g)
		total += n
	}
	sortGroups(keys)
	idx.all = make([]Placement, total)
	off := 0
	for _, g := range keys {
		n := counts[g]
		idx.groups[g] = &indexedGroup{ps: idx.all[off : off : off+n]}
		off += n
	}
}

// add appends a working dispatcher to its group; seal sorts the groups once all are in.
func (idx workingIndex) add(p Placement) {
	g := groupKey{p.Span.TableId, p.Mode}
	ig := idx.groups[g]
	if ig == nil {
		ig = &indexedGroup{own: true}
		idx.groups[g] = ig
	}
	if len(ig.ps) == cap(ig.ps) {
		ig.own = true // more than reserved (cannot happen: reserve counts every status); on its own now
	}
	ig.ps = append(ig.ps, p)
}

func (idx workingIndex) seal() {
	// One scratch buffer for every group, as large as the largest: a buffer per group was as
	// large as the whole index (100 MB at a million spans), allocated and faulted in for a
	// merge that only needs one group's worth at a time.
	var scratch []Placement
	for _, ig := range idx.groups {
		scratch = sortBySpan(ig.ps, scratch)
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
	ig := idx.groups[g]
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

// sortBySpan sorts ps by span in place, with scratch as its buffer (grown when too small and
// returned for the next call). A group is the concatenation of every node's report, and each
// node reports in dispatcher ID order, which usually follows span order: so the list is a few
// sorted runs, merged pairwise. Many runs (no such order) fall back to a sort of indexes;
// placements are large, so moving 4-byte indexes beats moving them.
func sortBySpan(ps, scratch []Placement) []Placement {
	var runs []int // start of each sorted run
	for i := range ps {
		if i == 0 || cmpSpan(ps[i-1], ps[i]) > 0 {
			runs = append(runs, i)
		}
	}
	if len(runs) <= 1 {
		return scratch
	}
	if cap(scratch) < len(ps) {
		scratch = make([]Placement, len(ps))
	}
	buf := scratch[:len(ps)]
	if len(runs) > 32 {
		order := make([]int32, len(ps))
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortFunc(order, func(a, b int32) int { return cmpSpan(ps[a], ps[b]) })
		for i, o := range order {
			buf[i] = ps[o]
		}
		copy(ps, buf)
		return scratch
	}
	src, dst := ps, buf
	for len(runs) > 1 {
		var next []int
		for r := 0; r < len(runs); r += 2 {
			lo, mid, hi := runs[r], len(src), len(src)
			if r+1 < len(runs) {
				mid = runs[r+1]
			}
			if r+2 < len(runs) {
				hi = runs[r+2]
			}
			mergeRuns(dst[lo:hi], src[lo:mid], src[mid:hi])
			next = append(next, lo)
		}
		src, dst, runs = dst, src, next
	}
	if &src[0] != &ps[0] {
		copy(ps, src) // the last pass merged into the buffer
	}
	return scratch
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

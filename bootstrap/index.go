package bootstrap

import (
	"bytes"
	"slices"
	"sort"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// workingIndex holds the working dispatchers of each group (a configured table in a mode the
// changefeed runs) sorted by span, and finds those overlapping a span. Groups are numbered
// table-major (table number * modes + mode), which is also the order of the plan's lists.
//
// Every group's placements lie in one array, in group order, each group in the room reserve
// counted for it, so that place can write the plan's Replicating list over it as it reads: at a
// million spans a second array of placements was 100 MB allocated and faulted in, and a group
// object with slices of its own was a million allocations.
type workingIndex struct {
	tables tableIndex
	modes  int
	all    []Placement
	start  []int32 // group g's room is all[start[g]:start[g+1]]
	n      []int32 // how much of it add filled
	// maxEnd[g][i]: the highest end key among group g's first i+1 placements, built on the
	// group's first find. Reported dispatchers may overlap (that is what conflicts are), so a
	// backwards scan stops where no earlier span can reach. Only operators search, so this is a
	// few groups, not one per table.
	maxEnd map[int][][]byte
}

// newWorkingIndex indexes the tables in modes modes (1, or 2 with redo).
func newWorkingIndex(tables tableIndex, modes int) workingIndex {
	return workingIndex{tables: tables, modes: modes, maxEnd: make(map[int][][]byte)}
}

// group returns the number of the group of table in mode, or false if the changefeed has
// no such table or does not run mode.
func (idx *workingIndex) group(table int64, mode heartbeatpb.Mode) (int, bool) {
	t, ok := idx.tables.lookup(table)
	if !ok || mode < 0 || int(mode) >= idx.modes {
		return 0, false
	}
	return t*idx.modes + int(mode), true
}

func (idx *workingIndex) groups() int { return idx.tables.len() * idx.modes }

// key returns the table and mode of group g.
func (idx *workingIndex) key(g int) groupKey {
	return groupKey{idx.tables.id(g / idx.modes), heartbeatpb.Mode(g % idx.modes)}
}

// placements returns what add put in group g (sorted once seal ran).
func (idx *workingIndex) placements(g int) []Placement {
	if idx.start == nil {
		return nil
	}
	from := idx.start[g]
	return idx.all[from : from+idx.n[g] : idx.start[g+1]]
}

// reserve makes room in each group for every status of responses that may join it, so that a
// million adds neither regrow nor allocate.
func (idx *workingIndex) reserve(responses map[string]*heartbeatpb.MaintainerBootstrapResponse) {
	groups := idx.groups()
	idx.start = make([]int32, groups+1)
	idx.n = make([]int32, groups)
	for _, resp := range responses {
		if resp == nil {
			continue
		}
		for i := range resp.Dispatchers {
			st := &resp.Dispatchers[i]
			if g, ok := idx.group(st.Span.TableId, st.Mode); ok {
				idx.start[g+1]++
			}
		}
	}
	for g := 0; g < groups; g++ {
		idx.start[g+1] += idx.start[g]
	}
	idx.all = make([]Placement, idx.start[groups])
}

// add puts a working dispatcher in group g. It reports false when the group is full, which
// only a status reserve did not see could cause.
func (idx *workingIndex) add(g int, p Placement) bool {
	if idx.start == nil || idx.start[g]+idx.n[g] == idx.start[g+1] {
		return false
	}
	idx.all[idx.start[g]+idx.n[g]] = p
	idx.n[g]++
	return true
}

// seal sorts every group by span once all are in.
func (idx *workingIndex) seal() {
	// One scratch buffer for every group, as large as the largest: a buffer per group was as
	// large as the whole index (100 MB at a million spans), allocated and faulted in for a
	// merge that only needs one group's worth at a time.
	var scratch []Placement
	for g := range idx.n {
		if idx.n[g] > 1 {
			scratch = sortBySpan(idx.placements(g), scratch)
		}
	}
}

// find returns a dispatcher of group g overlapping s for which skip is false.
func (idx *workingIndex) find(g int, s heartbeatpb.TableSpan, skip func(Placement) bool) (Placement, bool) {
	ps := idx.placements(g)
	if len(ps) == 0 {
		return Placement{}, false
	}
	maxEnd, ok := idx.maxEnd[g]
	if !ok {
		maxEnd = make([][]byte, len(ps))
		for i := range ps {
			maxEnd[i] = ps[i].Span.EndKey
			if i > 0 && bytes.Compare(maxEnd[i-1], maxEnd[i]) > 0 {
				maxEnd[i] = maxEnd[i-1]
			}
		}
		idx.maxEnd[g] = maxEnd
	}
	i := sort.Search(len(ps), func(i int) bool { return bytes.Compare(ps[i].Span.StartKey, s.EndKey) >= 0 })
	for j := i - 1; j >= 0 && bytes.Compare(maxEnd[j], s.StartKey) > 0; j-- {
		if p := ps[j]; bytes.Compare(p.Span.EndKey, s.StartKey) > 0 && !skip(p) {
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

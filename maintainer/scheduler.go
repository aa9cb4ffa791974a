package maintainer

import (
	"container/heap"
	"slices"
	"time"
)

// place runs one round of the basic scheduler: absent spans go to the least-loaded nodes that
// may receive spans, within the round bound and the in-flight limits, if those leave room for
// at least minRoom. Spans of removed tables are taken out, never placed.
//
// It reports a backlog: absent spans are left because the limits, not the supply, ended the
// round (a cold start's or a failover's re-creation). The maintainer then places again as
// finishes free room (refillRoom), not only once a tick.
func place(v schedView, act starter, now time.Time, minRoom int) (backlog bool) {
	if v.db.counts[stateAbsent] == 0 {
		return false
	}
	loads := v.nodeLoads()
	budget := 0
	for _, l := range loads {
		budget += l.free
	}
	budget = min(budget, v.cfg.ScheduleBatch, v.cfg.MaxOperators-v.ctl.Len())
	if budget < max(minRoom, 1) {
		return true
	}
	cands := act.takeAbsent(budget)
	full := len(cands) == budget
	if len(v.tables.gone) > 0 {
		cands = slices.DeleteFunc(cands, func(sid spanID) bool {
			if v.gone(v.db.get(sid).table) {
				act.retire(sid)
				return true
			}
			return false
		})
	}
	// placeAbsent takes candidates in order, so placed[i] is cands[i].
	placed := placeAbsent(cands, loads, budget, v.twinsAmong(cands))
	for _, p := range placed {
		if !act.add(p, now) {
			act.requeue(p.span)
		}
	}
	for _, id := range cands[len(placed):] {
		act.requeue(id)
	}
	return full && v.db.counts[stateAbsent] > 0
}

// refillRoom is the room a backlog waits for between ticks: an eighth of a round, so a
// heartbeat's worth of finishes is placed at once, not span by span.
func refillRoom(cfg *Config) int { return max(cfg.ScheduleBatch/8, 1) }

// nodeLoad is one live node as the basic scheduler sees it.
type nodeLoad struct {
	node  string
	spans int // spans it serves or is about to serve
	free  int // operators it may still take this round (in-flight limit)
}

// placement is one absent span the scheduler puts on one node.
type placement struct {
	span spanID
	node string
}

// placeAbsent is the basic scheduler: a pure function from the absent spans to place (oldest
// first) and the live nodes' loads to placements, each span going to the node with the fewest
// spans at that moment (ties by node ID), never beyond a node's free operator slots or limit
// placements in total. follow, when not nil, keeps both modes of a key range together:
// follow[i] >= 0 names an earlier candidate (the span's twin) whose node span i goes to while
// that node has a free slot. It does not modify its inputs.
func placeAbsent(absent []spanID, nodes []nodeLoad, limit int, follow []int) []placement {
	h := make(loadHeap, 0, len(nodes))
	for _, n := range nodes {
		if n.free > 0 {
			h = append(h, n)
		}
	}
	heap.Init(&h)
	if limit > len(absent) {
		limit = len(absent)
	}
	out := make([]placement, 0, limit)
	for i, id := range absent {
		if len(out) >= limit || len(h) == 0 {
			break
		}
		at := 0
		if follow != nil && follow[i] >= 0 {
			if j := h.find(out[follow[i]].node); j >= 0 {
				at = j
			}
		}
		n := &h[at]
		out = append(out, placement{span: id, node: n.node})
		n.spans++
		n.free--
		if n.free == 0 {
			heap.Remove(&h, at)
		} else {
			heap.Fix(&h, at)
		}
	}
	return out
}

// find returns the heap position of node, or -1 (it has no free slot left). Nodes are few.
func (h loadHeap) find(node string) int {
	for i := range h {
		if h[i].node == node {
			return i
		}
	}
	return -1
}

// loadHeap is a min-heap of nodes by span count, ties by node ID for determinism.
type loadHeap []nodeLoad

func (h loadHeap) Len() int { return len(h) }
func (h loadHeap) Less(i, j int) bool {
	if h[i].spans != h[j].spans {
		return h[i].spans < h[j].spans
	}
	return h[i].node < h[j].node
}
func (h loadHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *loadHeap) Push(x any)   { *h = append(*h, x.(nodeLoad)) }
func (h *loadHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	*h = old[:len(old)-1]
	return n
}

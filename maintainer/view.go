package maintainer

import (
	"container/heap"
	"slices"
	"sort"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

// schedView is what the schedulers read: the span DB, the nodes, the operator limits and the
// load reports. They never write through it; every change goes through a starter.
type schedView struct {
	cfg    *Config
	db     *spanDB
	nodes  *nodeSet
	ctl    *operator.Controller
	loads  *loadTracker
	tables *tableChanges
}

// starter is how a scheduler acts on its decisions: each start call creates one operator and
// reports whether it did (the controller may refuse for limits or busy spans). The absent queue,
// the tombstones and the load streaks change only through it too.
type starter interface {
	add(p placement, now time.Time) bool
	move(sid spanID, dest string, now time.Time) bool
	split(sid spanID, children []heartbeatpb.TableSpan, nodes []string, now time.Time) bool
	merge(run []spanID, node string, now time.Time) bool
	takeAbsent(n int) []spanID
	requeue(sid spanID)
	retire(sid spanID)
	notHot(sid spanID)
	coolDown(table int64, until time.Time)
}

func (v schedView) redo() bool { return v.cfg.ChangefeedConfig.Redo }

// gone: the table left the config; its spans are being taken out.
func (v schedView) gone(table int64) bool { return v.tables.gone[table] }

// quiet: every span replicating and no operator in flight, so the counts are final.
func (v schedView) quiet() bool {
	return v.ctl.Len() == 0 && v.db.counts[stateAbsent] == 0 && v.db.counts[stateScheduling] == 0
}

// nodeLoads describes the nodes that may receive spans, by node ID.
func (v schedView) nodeLoads() []nodeLoad {
	out := make([]nodeLoad, 0, len(v.nodes.live))
	for id := range v.nodes.live {
		if !v.nodes.target(id) { // drained and unhealthy nodes take no new spans
			continue
		}
		out = append(out, nodeLoad{node: id, spans: v.db.nodeLoad(id), free: v.ctl.Free(id)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].node < out[j].node })
	return out
}

// twinsAmong returns, with redo on, for each candidate the index of an earlier candidate holding
// the same key range in the other mode (or -1), so both modes are placed on one node; nil
// otherwise.
func (v schedView) twinsAmong(cands []spanID) []int {
	if !v.redo() || len(cands) < 2 {
		return nil
	}
	follow := make([]int, len(cands))
	first := make(map[span.Key]int, len(cands))
	for i, sid := range cands {
		follow[i] = -1
		k := span.KeyOf(v.db.spanOf(sid))
		if j, ok := first[k]; ok && v.db.get(cands[j]).mode != v.db.get(sid).mode {
			follow[i] = j
			delete(first, k)
			continue
		}
		first[k] = i
	}
	return follow
}

// modeLoads splits the nodes' span counts by mode (same node order as loads).
func (v schedView) modeLoads(loads []nodeLoad) (def, redo []nodeLoad) {
	def = slices.Clone(loads)
	redo = slices.Clone(loads)
	for i, l := range loads {
		nd, nr := 0, 0
		for _, sid := range v.db.byNode[l.node] {
			if v.db.get(sid).mode == heartbeatpb.ModeRedo {
				nr++
			} else {
				nd++
			}
		}
		def[i].spans, redo[i].spans = nd, nr
	}
	return def, redo
}

// pickOnNode returns up to n free replicating spans of mode on node that pred (if any) accepts,
// smallest span IDs first. It keeps only the n best in a bounded heap, so a node with a million
// spans costs one pass and no per-span allocation.
func (v schedView) pickOnNode(node string, mode heartbeatpb.Mode, n int, pred func(spanID) bool) []spanID {
	if n <= 0 {
		return nil
	}
	h := make(idMaxHeap, 0, n)
	for _, sid := range v.db.byNode[node] {
		if len(h) == n && sid >= h[0] {
			continue
		}
		r := v.db.get(sid)
		if !r.free() || r.mode != mode || (pred != nil && !pred(sid)) {
			continue
		}
		if len(h) < n {
			heap.Push(&h, sid)
		} else {
			h[0] = sid
			heap.Fix(&h, 0)
		}
	}
	out := []spanID(h)
	slices.Sort(out)
	return out
}

// idMaxHeap keeps the largest span ID on top.
type idMaxHeap []spanID

func (h idMaxHeap) Len() int           { return len(h) }
func (h idMaxHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h idMaxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idMaxHeap) Push(x any)        { *h = append(*h, x.(spanID)) }
func (h *idMaxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// The starter side of the schedulers, on the operator runner.

func (r *opRunner) takeAbsent(n int) []spanID             { return r.db.popAbsent(n) }
func (r *opRunner) requeue(sid spanID)                    { r.db.requeue(sid) }
func (r *opRunner) notHot(sid spanID)                     { r.loads.notHot(sid) }
func (r *opRunner) coolDown(table int64, until time.Time) { r.loads.coolDown(table, until) }

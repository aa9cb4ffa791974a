package maintainer

import (
	"container/heap"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/span"
)

// defaultSplitPieces is k when the config leaves split_pieces at zero.
const defaultSplitPieces = 2

// splitAndMerge runs the split and merge schedulers. Repair comes first: nothing is split or
// merged while a span is absent. Each round starts at most SplitMergeBatch operators.
func splitAndMerge(v schedView, act starter, log *zap.Logger, now time.Time) {
	if v.loads.calm() || v.db.counts[stateAbsent] > 0 {
		return
	}
	budget := v.cfg.SplitMergeBatch
	budget -= splitHot(v, act, log, now, budget)
	mergeCold(v, act, now, budget)
}

// splitHot splits hot spans, oldest span ID first, and returns how many operators it started.
// A span's twin in the other mode is split along the same keys onto the same nodes, so both
// modes of a key range stay together.
func splitHot(v schedView, act starter, log *zap.Logger, now time.Time, budget int) int {
	pieces := int(v.cfg.ChangefeedConfig.SplitPieces)
	if pieces < 2 {
		pieces = defaultSplitPieces
	}
	picker := newNodePicker(v.nodeLoads())
	started := 0
	for _, sid := range v.loads.hotSpans() {
		if started >= budget {
			break
		}
		r := v.db.get(sid)
		if !r.free() || v.gone(r.table) || v.loads.coolingDown(r.table, now) {
			continue
		}
		children, err := span.Split(v.db.spanOf(sid), pieces)
		if err != nil {
			act.notHot(sid) // too narrow to split: stop asking
			continue
		}
		nodes := picker.pickN(len(children))
		if nodes == nil {
			break // no node has a free operator slot
		}
		load := v.loads.load(sid)
		if !act.split(sid, children, nodes, now) {
			continue
		}
		started++
		if twin, ok := v.db.twin(sid); ok && started < budget {
			if act.split(twin, children, nodes, now) {
				started++
			}
		}
		act.coolDown(r.table, now.Add(v.cfg.SplitMergeCooldown))
		log.Info("splitting hot span", zap.String("span", span.String(v.db.spanOf(sid))), zap.Uint64("load", load),
			zap.Int("pieces", len(children)), zap.Strings("nodes", nodes))
	}
	return started
}

// nodePicker hands out the least-loaded node with a free operator slot, one span at a time
// (ties by node ID), counting what it handed out.
type nodePicker struct{ h loadHeap }

func newNodePicker(loads []nodeLoad) *nodePicker {
	p := &nodePicker{}
	for _, l := range loads {
		if l.free > 0 {
			p.h = append(p.h, l)
		}
	}
	heap.Init(&p.h)
	return p
}

// pickN returns k nodes for k new spans (a node may repeat when there are fewer nodes than
// spans), or nil when no node is free.
func (p *nodePicker) pickN(k int) []string {
	if len(p.h) == 0 {
		return nil
	}
	out := make([]string, k)
	for i := range out {
		n := &p.h[0]
		out[i] = n.node
		n.spans++
		heap.Fix(&p.h, 0)
	}
	// One operator per node involved, however many children it takes.
	done := make(map[string]bool, k)
	for i := 0; i < len(p.h); {
		n := p.h[i].node
		if !done[n] && slices.Contains(out, n) {
			done[n] = true
			if p.h[i].free--; p.h[i].free == 0 {
				heap.Remove(&p.h, i)
				i = 0 // the heap reordered: rescan; done keeps counts right
				continue
			}
		}
		i++
	}
	return out
}

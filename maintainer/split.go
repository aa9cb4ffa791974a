package maintainer

import (
	"container/heap"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

// defaultSplitPieces is k when the config leaves split_pieces at zero.
const defaultSplitPieces = 2

// observeLoad records one load report of a replicating span and keeps its hot and cold streaks:
// only a load that stays past a threshold for LoadReports reports in a row counts, so a single
// spike neither splits nor merges anything.
func (m *Maintainer) observeLoad(sid spanID, load uint64) {
	cfg := m.cfg.ChangefeedConfig
	if cfg.SplitLoadThreshold == 0 && cfg.MergeLoadThreshold == 0 {
		return
	}
	if m.sched.loads == nil {
		m.sched.loads = make(map[spanID]loadTrack)
		m.sched.hot = make(map[spanID]struct{})
		m.sched.cold = make(map[spanID]struct{})
	}
	t := m.sched.loads[sid]
	t.load = load
	t.hot = streak(t.hot, cfg.SplitLoadThreshold > 0 && load > cfg.SplitLoadThreshold)
	t.cold = streak(t.cold, cfg.MergeLoadThreshold > 0 && load < cfg.MergeLoadThreshold)
	m.sched.loads[sid] = t
	mark(m.sched.hot, sid, int(t.hot) >= m.cfg.LoadReports)
	mark(m.sched.cold, sid, int(t.cold) >= m.cfg.LoadReports)
}

func streak(n uint16, on bool) uint16 {
	switch {
	case !on:
		return 0
	case n < 1<<15:
		return n + 1
	}
	return n
}

func mark(set map[spanID]struct{}, sid spanID, on bool) {
	if on {
		set[sid] = struct{}{}
	} else {
		delete(set, sid)
	}
}

// forgetLoad drops a span's streaks: after a split or merge its reports start over.
func (m *Maintainer) forgetLoad(sid spanID) {
	delete(m.sched.loads, sid)
	delete(m.sched.hot, sid)
	delete(m.sched.cold, sid)
}

// splitAndMerge runs the split and merge schedulers. Repair comes first: nothing is split or
// merged while a span is absent. Each round starts at most SplitMergeBatch operators.
func (m *Maintainer) splitAndMerge(now time.Time) {
	if len(m.sched.hot) == 0 && len(m.sched.cold) == 0 {
		return
	}
	if m.db.counts[stateAbsent] > 0 {
		return
	}
	budget := m.cfg.SplitMergeBatch
	budget -= m.splitHot(now, budget)
	m.mergeCold(now, budget)
}

// coolingDown reports whether table had a split or merge too recently.
func (m *Maintainer) coolingDown(table int64, now time.Time) bool {
	until, ok := m.sched.cooldown[table]
	if ok && now.Before(until) {
		return true
	}
	if ok {
		delete(m.sched.cooldown, table)
	}
	return false
}

// splitHot splits hot spans, oldest span ID first, and returns how many operators it started.
// A span's twin in the other mode is split along the same keys onto the same nodes, so both
// modes of a key range stay together.
func (m *Maintainer) splitHot(now time.Time, budget int) int {
	cands := make([]spanID, 0, len(m.sched.hot))
	for sid := range m.sched.hot {
		cands = append(cands, sid)
	}
	slices.Sort(cands)
	pieces := int(m.cfg.ChangefeedConfig.SplitPieces)
	if pieces < 2 {
		pieces = defaultSplitPieces
	}
	picker := newNodePicker(m.nodeLoads())
	started := 0
	for _, sid := range cands {
		if started >= budget {
			break
		}
		r := m.db.get(sid)
		if r.retired || r.state != stateReplicating || r.op != noOp || m.sched.gone[r.span.TableId] ||
			m.coolingDown(r.span.TableId, now) {
			continue
		}
		children, err := span.Split(r.span, pieces)
		if err != nil {
			delete(m.sched.hot, sid) // too narrow to split: stop asking
			continue
		}
		nodes := picker.pickN(len(children))
		if nodes == nil {
			break // no node has a free operator slot
		}
		if !m.startSplit(sid, children, nodes, now) {
			continue
		}
		started++
		if twin, ok := m.twin(sid); ok && started < budget {
			if m.startSplit(twin, children, nodes, now) {
				started++
			}
		}
		mapSet(&m.sched.cooldown, r.span.TableId, now.Add(m.cfg.SplitMergeCooldown))
		m.log.Info("splitting hot span", zap.String("span", span.String(r.span)), zap.Uint64("load", m.sched.loads[sid].load),
			zap.Int("pieces", len(children)), zap.Strings("nodes", nodes))
	}
	return started
}

// startSplit creates the Split of replicating span sid into children on nodes; false when the
// span is not free or the controller refused it.
func (m *Maintainer) startSplit(sid spanID, children []heartbeatpb.TableSpan, nodes []string, now time.Time) bool {
	r := m.db.get(sid)
	if r.retired || r.state != stateReplicating || r.op != noOp {
		return false
	}
	d := heartbeatpb.OperatorDescriptor{
		Id: heartbeatpb.OperatorID{Epoch: m.cfg.Epoch, Seq: m.nextOperator + 1}, Kind: heartbeatpb.OpSplit,
		Mode: r.mode, CreatedMs: now.UnixMilli(),
		Sources: []heartbeatpb.SpanPlacement{{Span: r.span, DispatcherId: r.dispatcher, NodeId: r.node}},
	}
	for i, c := range children {
		d.Targets = append(d.Targets, heartbeatpb.SpanPlacement{Span: c, NodeId: nodes[i],
			DispatcherId: heartbeatpb.DispatcherID{Hi: m.cfg.Epoch, Lo: m.nextDispatcher + uint64(i) + 1}})
	}
	op, err := operator.NewSplit(d, m.db.checkpoint(sid), now)
	if err != nil {
		panic("maintainer: span DB holds an invalid split: " + err.Error())
	}
	if !m.addOp(op, r.span, now) {
		return false
	}
	m.nextDispatcher += uint64(len(children))
	m.db.beginOp(sid, d.Id)
	m.opSpans[d.Id] = []spanID{sid}
	m.forgetLoad(sid)
	return true
}

// twin returns the span of the same key range in the other mode, if the DB holds one.
func (m *Maintainer) twin(sid spanID) (spanID, bool) {
	r := m.db.get(sid)
	for _, o := range m.db.byTable[r.span.TableId] {
		if o != sid && m.db.get(o).mode != r.mode && span.Equal(m.db.get(o).span, r.span) {
			return o, true
		}
	}
	return 0, false
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

package maintainer

import (
	"errors"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

// schedule runs one round of the basic scheduler: absent spans go to the least-loaded ready
// nodes, within the round bound and the in-flight limits.
func (m *Maintainer) schedule(now time.Time) {
	if m.db.counts[stateAbsent] == 0 {
		return
	}
	loads := m.nodeLoads()
	budget := 0
	for _, l := range loads {
		budget += l.free
	}
	budget = min(budget, m.cfg.ScheduleBatch, m.cfg.MaxOperators-m.ctl.Len())
	if budget <= 0 {
		return
	}
	cands := m.db.popAbsent(budget)
	// placeAbsent takes candidates in order, so placed[i] is cands[i].
	placed := placeAbsent(cands, loads, budget)
	for _, p := range placed {
		if !m.startAdd(p, now) {
			m.db.enqueue(p.span)
		}
	}
	for _, id := range cands[len(placed):] {
		m.db.enqueue(id)
	}
}

// nodeLoads describes the ready nodes for the scheduler, by node ID.
func (m *Maintainer) nodeLoads() []nodeLoad {
	out := make([]nodeLoad, 0, len(m.nodes))
	for id, n := range m.nodes {
		if n.state != nodeReady {
			continue
		}
		out = append(out, nodeLoad{node: id, spans: m.db.nodeLoad(id), free: m.ctl.Free(id)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].node < out[j].node })
	return out
}

// startAdd creates the Add of one placement; false when the controller refused it.
func (m *Maintainer) startAdd(p placement, now time.Time) bool {
	r := m.db.get(p.span)
	// IDs are taken only when the controller accepts, so deferred attempts leave no holes.
	opID := heartbeatpb.OperatorID{Epoch: m.cfg.Epoch, Seq: m.nextOperator + 1}
	did := heartbeatpb.DispatcherID{Hi: m.cfg.Epoch, Lo: m.nextDispatcher + 1}
	op, err := operator.NewAdd(opID, r.span, r.mode, p.node, did, m.db.checkpoint(p.span), now)
	if err != nil {
		panic("maintainer: span DB holds an invalid span: " + err.Error())
	}
	out, err := m.ctl.Add(op, now)
	if err != nil {
		if !errors.Is(err, operator.ErrSpanBusy) && !errors.Is(err, operator.ErrLimit) {
			panic("maintainer: unexpected controller error: " + err.Error())
		}
		m.log.Debug("add deferred", zap.String("span", span.String(r.span)), zap.Error(err))
		return false
	}
	m.nextOperator++
	m.nextDispatcher++
	m.db.beginAdd(p.span, opID, p.node, did)
	m.opSpans[opID] = []spanID{p.span}
	m.emit(out)
	return true
}

// applyFinished applies the results of finished operators to the span DB and queues their
// acknowledgement to every node they involved.
func (m *Maintainer) applyFinished(now time.Time) {
	for _, f := range m.ctl.TakeFinished() {
		id := f.Op.ID()
		for _, n := range operator.Nodes(f.Op) {
			if m.nodes[n] != nil {
				m.outAcks[n] = append(m.outAcks[n], id)
			}
		}
		m.log.Info("operator finished", zap.Stringer("operator", &id), zap.Stringer("kind", f.Op.Type()),
			zap.Stringer("outcome", f.Result.Outcome))
		sids, linked := m.opSpans[id]
		if !linked {
			continue // a stray removal: the span DB never depended on it
		}
		delete(m.opSpans, id)
		touched := make(map[spanID]bool, len(sids))
		for _, b := range f.Result.Bind {
			if sid, ok := m.findSpan(sids, b.Span, b.Mode); ok {
				m.db.bind(sid, b.Node, b.Dispatcher, b.Checkpoint)
				touched[sid] = true
			}
		}
		for _, a := range f.Result.Absent {
			if sid, ok := m.findSpan(sids, a.Span, a.Mode); ok {
				m.db.markAbsent(sid, a.Checkpoint)
				touched[sid] = true
			}
		}
		for _, sid := range sids {
			if !touched[sid] && m.db.get(sid).op == id {
				m.db.release(sid)
			}
		}
	}
}

// findSpan returns the span among sids that equals s in mode.
func (m *Maintainer) findSpan(sids []spanID, s heartbeatpb.TableSpan, mode heartbeatpb.Mode) (spanID, bool) {
	for _, sid := range sids {
		r := m.db.get(sid)
		if r.mode == mode && span.Equal(r.span, s) {
			return sid, true
		}
	}
	return 0, false
}

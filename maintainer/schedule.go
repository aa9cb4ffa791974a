package maintainer

import (
	"errors"
	"slices"
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
	if len(m.sched.gone) > 0 {
		// Spans of removed tables are taken out, never placed.
		cands = slices.DeleteFunc(cands, func(sid spanID) bool {
			if m.sched.gone[m.db.get(sid).span.TableId] {
				m.retireSpan(sid)
				return true
			}
			return false
		})
	}
	// placeAbsent takes candidates in order, so placed[i] is cands[i].
	placed := placeAbsent(cands, loads, budget, m.twinsAmong(cands))
	for _, p := range placed {
		if !m.startAdd(p, now) {
			m.db.enqueue(p.span)
		}
	}
	for _, id := range cands[len(placed):] {
		m.db.enqueue(id)
	}
}

// twinsAmong returns, with redo on, for each candidate the index of an earlier candidate holding
// the same key range in the other mode (or -1), so both modes are placed on one node; nil
// otherwise.
func (m *Maintainer) twinsAmong(cands []spanID) []int {
	if !m.cfg.ChangefeedConfig.Redo || len(cands) < 2 {
		return nil
	}
	follow := make([]int, len(cands))
	first := make(map[span.Key]int, len(cands))
	for i, sid := range cands {
		follow[i] = -1
		k := span.KeyOf(m.db.get(sid).span)
		if j, ok := first[k]; ok && m.db.get(cands[j]).mode != m.db.get(sid).mode {
			follow[i] = j
			delete(first, k)
			continue
		}
		first[k] = i
	}
	return follow
}

// nodeLoads describes the ready nodes for the scheduler, by node ID.
func (m *Maintainer) nodeLoads() []nodeLoad {
	out := make([]nodeLoad, 0, len(m.nodes))
	for id, n := range m.nodes {
		if n.state != nodeReady || m.avoided(id) { // drained and unhealthy nodes take no new spans
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
		m.applyResult(id, sids, f.Result)
	}
}

// applyResult applies one finished operator's result to the spans it held (sids). Retired
// spans (a Split's parent, a Merge's sources) leave the DB first; Bind and Absent spans the
// operator did not hold are then the ones replacing them, inserted new. Held spans the result
// does not mention go back to what they were.
func (m *Maintainer) applyResult(id heartbeatpb.OperatorID, sids []spanID, res operator.Result) {
	touched := make(map[spanID]bool, len(sids))
	for _, rt := range res.Retire {
		if sid, ok := m.findSpan(sids, rt.Span, rt.Mode); ok {
			m.retireSpan(sid)
			touched[sid] = true
		}
	}
	replacing := len(res.Retire) > 0 && len(touched) > 0
	for _, b := range res.Bind {
		if sid, ok := m.findSpan(sids, b.Span, b.Mode); ok {
			m.db.bind(sid, b.Node, b.Dispatcher, b.Checkpoint)
			touched[sid] = true
		} else if replacing {
			m.db.insertReplicating(b.Span, b.Mode, b.Node, b.Dispatcher, b.Checkpoint)
		}
	}
	for _, a := range res.Absent {
		if sid, ok := m.findSpan(sids, a.Span, a.Mode); ok {
			m.db.markAbsent(sid, a.Checkpoint)
			touched[sid] = true
		} else if replacing {
			m.db.insertAbsent(a.Span, a.Mode, a.Checkpoint)
		}
	}
	for _, sid := range sids {
		if !touched[sid] && m.db.get(sid).op == id {
			m.db.release(sid)
		}
	}
}

// findSpan returns the live span among sids that equals s in mode.
func (m *Maintainer) findSpan(sids []spanID, s heartbeatpb.TableSpan, mode heartbeatpb.Mode) (spanID, bool) {
	for _, sid := range sids {
		r := m.db.get(sid)
		if !r.retired && r.mode == mode && span.Equal(r.span, s) {
			return sid, true
		}
	}
	return 0, false
}

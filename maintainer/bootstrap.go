package maintainer

import (
	"sort"
	"time"

	"github.com/pingcap/failpoint"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/bootstrap"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

// resendBootstrap repeats the bootstrap request to nodes that have not answered, on the throttle.
func (m *Maintainer) resendBootstrap(now time.Time) {
	for id, n := range m.nodes {
		if n.state == nodeBootstrapping && now.Sub(n.sentAt) >= m.cfg.ResendInterval {
			n.sentAt, n.nudged = now, false
			m.outBootstrap[id] = true
		}
	}
}

// nudgeBootstrap resends the bootstrap request to a node that has not answered it but whose
// heartbeat of this term just arrived. A heartbeat at this epoch shows the node has confirmed
// the term with etcd, so a request it got before that (or lost) need not wait out the resend
// throttle: after an etcd outage that wait was most of a node's time to rejoin. Once per send,
// so a chatty node cannot make it a storm.
func (m *Maintainer) nudgeBootstrap(id string, n *nodeInfo) {
	if n.state != nodeBootstrapping || n.nudged {
		return
	}
	n.nudged = true
	m.outBootstrap[id] = true
}

// timeoutBootstrap handles nodes still silent at the bootstrap deadline. A silent node may be
// alive and still running dispatchers, so it is never assumed dead: the runner is asked to evict
// it (delete its registration under the election guard), which makes its own lease guard stop
// every dispatcher before it registers again. The restore keeps waiting until the node answers
// or leaves. The eviction is asked again on the resend throttle until one of those happens.
func (m *Maintainer) timeoutBootstrap(now time.Time) {
	var silent []string
	for id, n := range m.nodes {
		if n.state != nodeBootstrapping || now.Sub(n.joined) < m.cfg.BootstrapTimeout {
			continue
		}
		if !n.silent {
			n.silent = true
			n.evictAt = now
			m.outEvict[id] = true
			silent = append(silent, id)
		} else if now.Sub(n.evictAt) >= m.cfg.ResendInterval {
			n.evictAt = now
			m.outEvict[id] = true
		}
	}
	sort.Strings(silent)
	if len(silent) > 0 {
		m.log.Warn("bootstrap timed out; evicting silent nodes before restoring", zap.Strings("nodes", silent),
			zap.Duration("timeout", m.cfg.BootstrapTimeout))
	}
}

// maybeFinishBootstrap restores the schedule once every node that counts has answered.
func (m *Maintainer) maybeFinishBootstrap(now time.Time) {
	if m.bootstrapped {
		return
	}
	for _, n := range m.nodes {
		if n.state == nodeBootstrapping {
			return // silent nodes too: they are evicted (NodeLeft) or answer, never assumed dead
		}
	}
	failpoint.Inject("maintainer-before-restore", func() {}) // every answer is in, nothing restored yet
	plan, err := bootstrap.RestoreAt(m.cfg.ChangefeedConfig, m.responses, m.cfg.PersistedCheckpoint, now)
	if err != nil {
		// New validated the same config, so Restore cannot fail on it.
		panic("maintainer: restore of a validated config failed: " + err.Error())
	}
	m.responses = nil
	m.bootstrapped = true
	m.applyPlan(plan, now)
	failpoint.Inject("maintainer-after-restore", func() {}) // plan applied, its first requests not yet sent
	m.applyFinished(now)
	m.updateCheckpoint()
	if !m.restoring() {
		m.schedule(now)
	}
}

// applyPlan loads the restored spans into the span DB, resumes the restored operators at the
// phase they reached, acknowledges the operators the plan does not resume and starts removing
// conflicts. Inconsistent records are logged as what the plan already did about them.
func (m *Maintainer) applyPlan(plan *bootstrap.Plan, now time.Time) {
	total := len(plan.Replicating) + len(plan.Absent)
	for _, r := range plan.Resumed {
		total += len(r.Held)
	}
	m.db = newSpanDB(total)
	// Indexes sized up front: growing them one span at a time dominates a large restore.
	perNode := make(map[string]int, len(m.nodes))
	perTable := make(map[int64]int, len(m.cfg.ChangefeedConfig.Tables))
	for _, p := range plan.Replicating {
		perNode[p.Node]++
		perTable[p.Span.TableId]++
	}
	for _, a := range plan.Absent {
		perTable[a.Span.TableId]++
	}
	for n, k := range perNode {
		m.db.byNode[n] = make(map[spanID]struct{}, k)
	}
	for t, k := range perTable {
		m.db.byTable[t] = make([]spanID, 0, k)
	}
	for _, p := range plan.Replicating {
		m.db.insertReplicating(p.Span, p.Mode, p.Node, p.Dispatcher, p.Checkpoint)
	}
	for _, a := range plan.Absent {
		m.db.insertAbsent(a.Span, a.Mode, a.ResumeTs)
	}
	for _, a := range plan.Acks {
		if m.nodes[a.Node] != nil {
			m.outAcks[a.Node] = append(m.outAcks[a.Node], a.Operator)
		}
	}
	for _, r := range plan.Resumed {
		m.resume(r, now)
	}
	for _, c := range plan.Conflicts {
		m.log.Warn("bootstrap: removing conflicting dispatcher", zap.String("node", c.Node),
			zap.String("span", span.String(c.Span)), zap.Stringer("mode", c.Mode),
			zap.Stringer("reason", c.Reason))
		m.removeStray(c.Node, c.Span, c.Mode, c.Dispatcher, c.Checkpoint, now)
	}
	for _, u := range plan.Unresolved {
		m.log.Warn("bootstrap: inconsistent record", zap.Stringer("kind", u.Kind), zap.String("node", u.Node),
			zap.String("span", span.String(u.Span)), zap.Stringer("operator", &u.Operator),
			zap.Uint64("checkpoint", u.Checkpoint), zap.String("detail", u.Detail))
	}
	m.log.Info("bootstrap complete", zap.Int("replicating", len(plan.Replicating)),
		zap.Int("absent", len(plan.Absent)), zap.Int("resumed", len(plan.Resumed)),
		zap.Int("completed", len(plan.Completed)), zap.Int("conflicts", len(plan.Conflicts)),
		zap.Int("unresolved", len(plan.Unresolved)), zap.Uint64("checkpoint", plan.Checkpoint))
}

// resume registers a restored operator and the spans it holds. The plan gives every operator
// its own spans and dispatchers, so the controller refusing one is a broken invariant of
// Restore; the spans then fall back to absent (their dispatchers, if any, are strangers that the
// next heartbeat gets removed) rather than being lost.
func (m *Maintainer) resume(r bootstrap.Resumed, now time.Time) {
	id := r.Op.ID()
	out, err := m.ctl.AddRestored(r.Op, now)
	if err != nil {
		m.log.Error("bootstrap: restored operator refused; its spans become absent", zap.Stringer("operator", &id),
			zap.Error(err))
		for _, h := range r.Held {
			m.db.insertAbsent(h.Span, h.Mode, h.Checkpoint)
		}
		return
	}
	sids := make([]spanID, 0, len(r.Held))
	for _, h := range r.Held {
		var sid spanID
		if h.Bound {
			sid = m.db.insertReplicating(h.Span, h.Mode, h.Node, h.Dispatcher, h.Checkpoint)
			m.db.beginOp(sid, id)
		} else {
			sid = m.db.insertAbsent(h.Span, h.Mode, h.Checkpoint)
			m.db.beginAdd(sid, id, h.Node, h.Dispatcher)
		}
		sids = append(sids, sid)
	}
	m.opSpans[id] = sids
	if m.restored == nil {
		m.restored = make(map[heartbeatpb.OperatorID]bool)
	}
	m.restored[id] = true
	m.emit(out)
}

// restoring reports whether a restored operator is still running: the schedulers wait for all
// of them, so the first decisions of this term are made on the schedule the last term left.
func (m *Maintainer) restoring() bool {
	for id := range m.restored {
		if _, running := m.ctl.Get(id); running {
			return true
		}
		delete(m.restored, id)
	}
	return false
}

// onBootstrapResponse records a node's answer. Before the restore it is kept for the plan;
// afterwards (a node that joined late) its working dispatchers are strangers and get removed.
func (m *Maintainer) onBootstrapResponse(node string, resp *heartbeatpb.MaintainerBootstrapResponse, now time.Time) {
	n := m.nodes[node]
	if n.state == nodeReady {
		return // a duplicate answer
	}
	n.state = nodeReady
	if !m.bootstrapped {
		// A late answer before the eviction took effect is a normal answer: stop evicting.
		n.silent = false
		delete(m.outEvict, node)
		m.responses[node] = resp
		m.maybeFinishBootstrap(now)
		return
	}
	// After the restore, a late or restarted node's answer is its whole truth, as a full
	// heartbeat is: its statuses reach the operators and the span DB (strangers are removed),
	// spans bound to it that it does not report go back to absent, and journal entries of
	// operators not running here are acknowledged.
	hb := &heartbeatpb.HeartBeatRequest{Full: true}
	for i := range resp.Dispatchers {
		if err := validStatus(&resp.Dispatchers[i]); err != nil {
			m.log.Warn("late bootstrap answer: malformed status", zap.String("node", node), zap.Error(err))
			continue
		}
		hb.Statuses = append(hb.Statuses, resp.Dispatchers[i])
	}
	for i := range resp.Operators {
		hb.Journal = append(hb.Journal, resp.Operators[i].Request.Operator.Id)
	}
	for i := range resp.MergeOperators {
		hb.Journal = append(hb.Journal, resp.MergeOperators[i].Request.Operator.Id)
	}
	m.onHeartbeat(node, hb, now)
	m.log.Info("late node bootstrapped", zap.String("node", node), zap.Int("dispatchers", len(resp.Dispatchers)))
}

// removeStray starts a Remove of a working dispatcher the span DB does not know. Failure (span
// busy, limits) is fine: the dispatcher shows up in the next heartbeat and is tried again.
func (m *Maintainer) removeStray(node string, s heartbeatpb.TableSpan, mode heartbeatpb.Mode,
	d heartbeatpb.DispatcherID, checkpoint uint64, now time.Time) {
	// The ID is taken only when the controller accepts, so refused attempts leave no holes.
	id := heartbeatpb.OperatorID{Epoch: m.cfg.Epoch, Seq: m.nextOperator + 1}
	op, err := operator.NewRemove(id, s, mode, node, d, checkpoint, now)
	if err == nil {
		var out []operator.Outgoing
		if out, err = m.ctl.Add(op, now); err == nil {
			m.nextOperator++
			m.emit(out)
			return
		}
	}
	m.log.Info("cannot remove stray dispatcher yet", zap.String("node", node),
		zap.String("span", span.String(s)), zap.Error(err))
}

package maintainer

import (
	"sort"
	"time"

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
			n.sentAt = now
			m.outBootstrap[id] = true
		}
	}
}

// timeoutBootstrap gives up waiting for silent nodes: they count as dead for the initial
// restore. They keep being asked; if one answers later it joins like a new node.
func (m *Maintainer) timeoutBootstrap() {
	var silent []string
	for id, n := range m.nodes {
		if n.state == nodeBootstrapping && !n.silent {
			n.silent = true
			silent = append(silent, id)
		}
	}
	sort.Strings(silent)
	if len(silent) > 0 {
		m.log.Warn("bootstrap timed out; silent nodes count as dead", zap.Strings("nodes", silent),
			zap.Duration("timeout", m.cfg.BootstrapTimeout))
	}
}

// maybeFinishBootstrap restores the schedule once every node that counts has answered.
func (m *Maintainer) maybeFinishBootstrap(now time.Time) {
	if m.bootstrapped {
		return
	}
	for _, n := range m.nodes {
		if n.state == nodeBootstrapping && !n.silent {
			return
		}
	}
	// failpoint: maintainer-before-restore (every answer is in, nothing restored yet)
	plan, err := bootstrap.Restore(m.cfg.ChangefeedConfig, m.responses, m.cfg.PersistedCheckpoint)
	if err != nil {
		// New validated the same config, so Restore cannot fail on it.
		panic("maintainer: restore of a validated config failed: " + err.Error())
	}
	m.responses = nil
	m.bootstrapped = true
	m.applyPlan(plan, now)
	// failpoint: maintainer-after-restore (plan applied, its first requests not yet sent)
	m.updateCheckpoint()
	m.schedule(now)
}

// applyPlan loads the restored spans into the span DB and starts removing conflicts.
func (m *Maintainer) applyPlan(plan *bootstrap.Plan, now time.Time) {
	total := len(plan.Replicating) + len(plan.Absent)
	m.db = newSpanDB(total)
	for _, p := range plan.Replicating {
		m.db.insertReplicating(p.Span, p.Mode, p.Node, p.Dispatcher, p.Checkpoint)
	}
	for _, a := range plan.Absent {
		m.db.insertAbsent(a.Span, a.Mode, a.ResumeTs)
	}
	for _, c := range plan.Conflicts {
		m.log.Warn("bootstrap: removing conflicting dispatcher", zap.String("node", c.Node),
			zap.String("span", span.String(c.Span)), zap.Stringer("mode", c.Mode),
			zap.Stringer("reason", c.Reason))
		m.removeStray(c.Node, c.Span, c.Mode, c.Dispatcher, c.Checkpoint, now)
	}
	for _, u := range plan.Unresolved {
		m.log.Warn("bootstrap: unresolved record", zap.Stringer("kind", u.Kind), zap.String("node", u.Node),
			zap.String("span", span.String(u.Span)), zap.Stringer("operator", &u.Operator),
			zap.Uint64("checkpoint", u.Checkpoint), zap.String("detail", u.Detail))
	}
	m.log.Info("bootstrap complete", zap.Int("replicating", len(plan.Replicating)),
		zap.Int("absent", len(plan.Absent)), zap.Int("conflicts", len(plan.Conflicts)),
		zap.Int("unresolved", len(plan.Unresolved)), zap.Uint64("checkpoint", plan.Checkpoint))
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
		if n.silent {
			n.silent = false
		}
		m.responses[node] = resp
		m.maybeFinishBootstrap(now)
		return
	}
	for i := range resp.Dispatchers {
		st := &resp.Dispatchers[i]
		if st.State != heartbeatpb.StateWorking {
			continue
		}
		if sid, ok := m.db.byDispatcher[st.Id]; ok && m.db.get(sid).node == node {
			continue
		}
		if _, owned := m.ctl.Owner(st.Id); owned {
			continue
		}
		m.removeStray(node, st.Span, st.Mode, st.Id, st.CheckpointTs, now)
	}
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

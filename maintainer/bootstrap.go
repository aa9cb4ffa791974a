package maintainer

import (
	"time"

	"github.com/pingcap/failpoint"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/bootstrap"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// bootstrapTick repeats unanswered bootstrap requests on the throttle and, before the restore,
// handles nodes still silent at the bootstrap deadline. A silent node may be alive and still
// running dispatchers, so it is never assumed dead: the runner is asked to evict it (delete its
// registration under the election guard), which makes its own lease guard stop every
// dispatcher before it registers again. The restore keeps waiting until the node answers or
// leaves. The eviction is asked again on the resend throttle until one of those happens.
func (m *Maintainer) bootstrapTick(now time.Time) {
	for _, id := range m.nodes.resendDue(now, m.cfg.ResendInterval) {
		m.out.bootstrap[id] = true
	}
	m.config.resend(m.out, &m.nodes, now, m.cfg.ResendInterval)
	if m.bootstrapped {
		return
	}
	evict, silent := m.nodes.evictDue(now, m.cfg.BootstrapTimeout, m.cfg.ResendInterval)
	for _, id := range evict {
		m.out.evict[id] = true
	}
	if len(silent) > 0 {
		m.log.Warn("bootstrap timed out; evicting silent nodes before restoring", zap.Strings("nodes", silent),
			zap.Duration("timeout", m.cfg.BootstrapTimeout))
	}
}

// nudgeBootstrap resends the bootstrap request to a node that has not answered it but whose
// heartbeat of this term just arrived. A heartbeat at this epoch shows the node has confirmed
// the term with etcd, so a request it got before that (or lost) need not wait out the resend
// throttle: after an etcd outage that wait was most of a node's time to rejoin. Once per send,
// so a chatty node cannot make it a storm; and only once the request has been out for half the
// resend interval. A node confirms a new term from etcd and sends its first heartbeat at about
// the moment the request reaches it, so a heartbeat soon after the send is no sign of a lost
// request: nudging on it made every node build and send its whole answer twice (at a million
// spans 0.6 s of a node's loop and 440,000 more statuses for the maintainer) in the middle of
// a failover.
func nudgeBootstrap(out *outbox, id string, n *nodeInfo, now time.Time, resend time.Duration) {
	if n.state != nodeBootstrapping || n.nudged || now.Sub(n.sentAt) < resend/2 {
		return
	}
	n.nudged = true
	out.bootstrap[id] = true
}

// finishBootstrap restores the schedule once every node that counts has answered.
func (m *Maintainer) finishBootstrap(now time.Time) {
	if m.bootstrapped || m.nodes.bootstrapping() {
		return // silent nodes too: they are evicted (NodeLeft) or answer, never assumed dead
	}
	failpoint.Inject("maintainer-before-restore", func() {}) // every answer is in, nothing restored yet
	plan, err := bootstrap.RestoreAt(m.cfg.ChangefeedConfig, m.responses, m.cfg.PersistedCheckpoint, now)
	if err != nil {
		// New validated the same config, so Restore cannot fail on it.
		panic("maintainer: restore of a validated config failed: " + err.Error())
	}
	for node, resp := range m.responses {
		m.mirrors.reset(node, resp.Dispatchers)
	}
	m.ops.skipTermIDs(m.responses, m.log)
	m.responses = nil
	m.bootstrapped = true
	applyPlan(plan, m.ops, m.log, now)
	failpoint.Inject("maintainer-after-restore", func() {}) // plan applied, its first requests not yet sent
	m.ops.applyFinished()
	m.cp.update(m.db)
	if !m.ops.restoring() {
		m.backlog = place(m.view(), m.ops, now, 1)
	}
}

// applyPlan loads the restored spans into the (emptied) span DB, resumes the restored operators
// at the phase they reached, acknowledges the operators the plan does not resume and starts
// removing conflicts. Inconsistent records are logged as what the plan already did about them.
func applyPlan(plan *bootstrap.Plan, r *opRunner, log *zap.Logger, now time.Time) {
	held := 0
	for _, res := range plan.Resumed {
		held += len(res.Held)
	}
	r.db.load(plan.Replicating, plan.Absent, held)
	for _, a := range plan.Acks {
		r.out.ack(a.Node, a.Operator)
	}
	for _, res := range plan.Resumed {
		r.resume(res, now)
	}
	for _, c := range plan.Conflicts {
		log.Warn("bootstrap: removing conflicting dispatcher", zap.String("node", c.Node),
			zap.String("span", span.String(c.Span)), zap.Stringer("mode", c.Mode),
			zap.Stringer("reason", c.Reason))
		r.removeStray(c.Node, c.Span, c.Mode, c.Dispatcher, c.Checkpoint, now)
	}
	for _, u := range plan.Unresolved {
		log.Warn("bootstrap: inconsistent record", zap.Stringer("kind", u.Kind), zap.String("node", u.Node),
			zap.String("span", span.String(u.Span)), zap.Stringer("operator", &u.Operator),
			zap.Uint64("checkpoint", u.Checkpoint), zap.String("detail", u.Detail))
	}
	log.Info("bootstrap complete", zap.Int("replicating", len(plan.Replicating)),
		zap.Int("absent", len(plan.Absent)), zap.Int("resumed", len(plan.Resumed)),
		zap.Int("completed", len(plan.Completed)), zap.Int("conflicts", len(plan.Conflicts)),
		zap.Int("unresolved", len(plan.Unresolved)), zap.Uint64("checkpoint", plan.Checkpoint))
}

// onBootstrapResponse records a node's answer. Before the restore it is kept for the plan;
// afterwards (a node that joined late) its working dispatchers are strangers and get removed.
func (m *Maintainer) onBootstrapResponse(node string, resp *heartbeatpb.MaintainerBootstrapResponse, now time.Time) {
	n := m.nodes.get(node)
	if n.state == nodeReady {
		return // a duplicate answer
	}
	n.state = nodeReady
	if !m.bootstrapped {
		// A late answer before the eviction took effect is a normal answer: stop evicting.
		n.silent = false
		delete(m.out.evict, node)
		m.responses[node] = resp
		m.finishBootstrap(now)
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

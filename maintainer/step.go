package maintainer

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// Step takes one envelope from a node. Malformed envelopes return an error wrapping ErrInvalid,
// envelopes of another epoch (lower or higher) one wrapping ErrStale, envelopes from a node that
// is not registered one wrapping ErrUnknownSender (and ErrStale); either way nothing changes. Duplicated or reordered envelopes are dropped silently (resending repairs the loss).
func (m *Maintainer) Step(env *heartbeatpb.Envelope, now time.Time) error {
	if err := validateEnvelope(&m.cfg, env); err != nil {
		return err
	}
	n := m.nodes.get(env.From)
	if n == nil {
		// A node the registry has not shown yet resends its heartbeat on its interval, and
		// NodeJoined asks it to bootstrap, so a dropped first message loses nothing.
		return fmt.Errorf("%w: %q (epoch %d seq %d)", ErrUnknownSender, env.From, env.Epoch, env.Seq)
	}
	if env.Epoch != m.cfg.Epoch {
		// A node stamps what it holds as etcd's current epoch. Another one, higher included,
		// is a node that has not confirmed this term yet (it resends once it has) or a forgery.
		return fmt.Errorf("%w: %s from %s for epoch %d, current is %d",
			ErrStale, bodyName(env), env.From, env.Epoch, m.cfg.Epoch)
	}
	// The ordering filter: per sender, only envelopes newer than the last accepted pass. A
	// different incarnation means the sender restarted, which resets the count. Pieces of one
	// answer pass in any order; the whole is acted on once complete (chunks.go).
	ch := chunkOf(env)
	if !m.recvOrder.IsNew(env) && ch == nil {
		return nil
	}
	m.now = now
	if m.recvOrder.IsNew(env) && m.recvOrder.Accept(env) {
		m.restartNode(env.From, now)
	}
	if ch != nil {
		whole, err := m.chunks.take(env, ch, n, m.bootstrapped && n.state == nodeReady, m.out.asked[env.From],
			m.recvOrder, m.log, now)
		if whole == nil {
			return err
		}
		env = whole
	}
	switch b := env.Body.(type) {
	case *heartbeatpb.Envelope_BootstrapResponse:
		m.config.acked(env.From) // a ready node's answer confirms the config it was sent
		m.onBootstrapResponse(env.From, b.BootstrapResponse, now)
	case *heartbeatpb.Envelope_Heartbeat:
		// Before a node is bootstrapped its statuses are not comparable with the span DB; its
		// answer then sets the node's mirror, and a digest that differs asks for the listing.
		if m.bootstrapped && n.state == nodeReady {
			m.onHeartbeat(env.From, b.Heartbeat, now)
		}
		nudgeBootstrap(m.out, env.From, n, now, m.cfg.ResendInterval)
	}
	return nil
}

// bodyName names what a node sent, for errors.
func bodyName(env *heartbeatpb.Envelope) string {
	if env.GetBootstrapResponse() != nil {
		return "bootstrap response"
	}
	return "heartbeat"
}

// validateEnvelope checks the header and the body without changing anything.
func validateEnvelope(cfg *Config, env *heartbeatpb.Envelope) error {
	if err := env.CheckRoute(cfg.ClusterID, cfg.Changefeed, cfg.SelfNode); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch b := env.Body.(type) {
	case *heartbeatpb.Envelope_Heartbeat:
		if b.Heartbeat == nil {
			return fmt.Errorf("%w: nil heartbeat from %s", ErrInvalid, env.From)
		}
		for i := range b.Heartbeat.Statuses {
			if err := validStatus(&b.Heartbeat.Statuses[i]); err != nil {
				return fmt.Errorf("%w: heartbeat from %s: %v", ErrInvalid, env.From, err)
			}
		}
		if err := validChunk(env, b.Heartbeat.Chunk); err != nil {
			return fmt.Errorf("%w: heartbeat from %s: %v", ErrInvalid, env.From, err)
		}
	case *heartbeatpb.Envelope_BootstrapResponse:
		if b.BootstrapResponse == nil {
			return fmt.Errorf("%w: nil bootstrap response from %s", ErrInvalid, env.From)
		}
		if err := validChunk(env, b.BootstrapResponse.Chunk); err != nil {
			return fmt.Errorf("%w: bootstrap response from %s: %v", ErrInvalid, env.From, err)
		}
	case nil:
		return fmt.Errorf("%w: envelope from %s without body", ErrInvalid, env.From)
	default:
		return fmt.Errorf("%w: envelope from %s: unexpected body %T for a maintainer", ErrInvalid, env.From, env.Body)
	}
	return nil
}

func validStatus(st *heartbeatpb.DispatcherStatus) error {
	if err := span.Validate(st.Span); err != nil {
		return err
	}
	if st.Mode != heartbeatpb.ModeDefault && st.Mode != heartbeatpb.ModeRedo {
		return fmt.Errorf("dispatcher %v: unknown mode %d", st.Id, st.Mode)
	}
	if st.State < heartbeatpb.StateWorking || st.State > heartbeatpb.StatePrepared {
		return fmt.Errorf("dispatcher %v: unknown state %d", st.Id, st.State)
	}
	return nil
}

// restartNode handles a node process that restarted without leaving the registry. Before the
// restore, its answer describes a process that no longer exists, so it is asked again. After
// it, nothing is aborted: requests sent before the restart was noticed may still reach the new
// process (seq order is per sender, not per process), so only its own reports can say what it
// runs. Its set does (its digest, or the listing asked for when the digest no longer matches the
// mirror of the old process): missing dispatchers send their spans back to absent, and
// operators waiting on the old process finish through its rejections of their resends.
// Either way the new process is asked to bootstrap: a dispatcher manager learns the changefeed
// config only from a bootstrap request and refuses every other request until it has one, so a
// restart after the restore would otherwise leave the node unusable for good
// (tests/sim/testdata/restart_after_restore.txt).
func (m *Maintainer) restartNode(id string, now time.Time) {
	m.log.Info("node restarted", zap.String("node", id))
	n := m.nodes.get(id)
	if !m.bootstrapped {
		delete(m.responses, id)
	}
	m.chunks.forget(id) // pieces of the old process's answers will never be completed
	n.state, n.sentAt, n.backoff = nodeBootstrapping, now, 0
	m.out.bootstrap[id] = true
}

// onHeartbeat feeds statuses to the span DB, the operators and the node's mirror, rejections to
// the operators, and acknowledges journal entries of operators this maintainer does not run
// (full and periodic reports, which it answers). Then the watermarks advance the spans the
// node serves, when its digest says the mirror is its set.
func (m *Maintainer) onHeartbeat(node string, hb *heartbeatpb.HeartBeatRequest, now time.Time) {
	for i := range hb.Statuses {
		m.onStatus(node, &hb.Statuses[i], now)
	}
	if hb.Full {
		m.mirrors.reset(node, hb.Statuses)
	} else {
		nm := m.mirrors.of(node)
		for i := range hb.Statuses {
			nm.apply(&hb.Statuses[i])
		}
	}
	for i := range hb.Rejections {
		m.out.emit(m.ctl.OnRejection(node, &hb.Rejections[i], now))
	}
	if len(hb.Rejections) > 0 {
		m.config.suspect(m.out, &m.nodes, node, now) // it may have refused for want of the latest table list
	}
	if hb.Full {
		reconcileFull(m.db, m.log, node, hb)
	}
	if hb.Full || hb.Periodic {
		for _, id := range hb.Journal {
			if _, running := m.ctl.Get(id); !running {
				m.out.acks[node] = append(m.out.acks[node], id)
			}
		}
		m.out.response[node] = true
	}
	m.ops.applyFinished()
	m.mirrors.applyWatermarks(m.db, m.out, m.log, node, hb, now)
	if m.backlog && m.bootstrapped {
		// Re-creation runs at in-flight operators over their round trip. Placing the backlog
		// only once a tick made the tick (100 ms) most of that round trip: a failover at a
		// million spans re-created 93,000 spans/s at the 10,000 in-flight limit.
		m.backlog = place(m.view(), m.ops, now, refillRoom(&m.cfg))
	}
}

// onStatus applies one dispatcher status.
func (m *Maintainer) onStatus(node string, st *heartbeatpb.DispatcherStatus, now time.Time) {
	sid, known, mismatch := m.db.boundTo(node, st)
	if known && st.State == heartbeatpb.StateWorking {
		m.db.advance(sid, st.CheckpointTs)
		m.loads.observe(m.cfg.ChangefeedConfig, m.cfg.LoadReports, sid, st.Load)
		m.errs.observe(sid, node, st)
	}
	out, owned := m.ctl.OnStatus(node, st, now)
	m.out.emit(out)
	// Apply a finish at once: a repeated status in the same heartbeat must find the span bound,
	// not take its dispatcher for a stranger.
	m.ops.applyFinished()
	if !known && st.State == heartbeatpb.StateWorking {
		// The status that finished an operator binds its dispatcher only now. Its error must be
		// kept too: a node sends an error once, when it appears, so a dispatcher that failed
		// at once (a compacted start revision) reports it in the very status that confirms it.
		if bound, ok, _ := m.db.boundTo(node, st); ok {
			m.errs.observe(bound, node, st)
		}
	}
	switch {
	case owned:
	case known:
		r := m.db.get(sid)
		if st.State != heartbeatpb.StateWorking && r.free() {
			// Stopped without an operator asking: its final checkpoint is where to resume.
			m.log.Warn("dispatcher stopped unexpectedly", zap.String("node", node),
				zap.String("span", span.String(m.db.spanOf(sid))), zap.Uint64("checkpoint", st.CheckpointTs))
			m.db.markAbsent(sid, max(m.db.checkpoint(sid), st.CheckpointTs))
		}
	case mismatch:
		// One of our dispatcher IDs with another node, span or mode: a confused reporter.
		// Removing "it" by ID would remove ours, so only log.
		m.log.Warn("status does not match the dispatcher it names", zap.String("node", node),
			zap.String("span", span.String(st.Span)), zap.String("known_node", m.db.nodeOf(sid)),
			zap.String("known_span", span.String(m.db.spanOf(sid))))
	case st.State == heartbeatpb.StateWorking:
		// A stranger: no span and no operator names it, so it would serve keys owned elsewhere
		// (or of no table at all). Remove it.
		m.log.Warn("removing unknown working dispatcher", zap.String("node", node),
			zap.String("span", span.String(st.Span)), zap.Stringer("mode", st.Mode))
		m.ops.removeStray(node, st.Span, st.Mode, st.Id, st.CheckpointTs, now)
	}
}

// reconcileFull compares a node's complete report with the span DB: a span replicating on the
// node whose dispatcher the report leaves out has lost it (the report is ordered after the
// status that bound it), so it goes back to absent from its last checkpoint.
func reconcileFull(db *spanDB, log *zap.Logger, node string, hb *heartbeatpb.HeartBeatRequest) {
	if len(db.byNode[node]) == 0 {
		return
	}
	reported := make(map[heartbeatpb.DispatcherID]bool, len(hb.Statuses))
	for i := range hb.Statuses {
		reported[hb.Statuses[i].Id] = true
	}
	reconcile(db, log, node, func(id heartbeatpb.DispatcherID) bool { return reported[id] })
}

// reconcile sends the free spans bound to node whose dispatcher the node does not hold (by
// holds, a complete account of its set) back to absent from their last checkpoint.
func reconcile(db *spanDB, log *zap.Logger, node string, holds func(heartbeatpb.DispatcherID) bool) {
	for _, sid := range missingFrom(db, node, holds) {
		log.Warn("dispatcher missing from the node's set", zap.String("node", node),
			zap.String("span", span.String(db.spanOf(sid))), zap.Uint64("checkpoint", db.checkpoint(sid)))
		db.markAbsent(sid, db.checkpoint(sid))
	}
}

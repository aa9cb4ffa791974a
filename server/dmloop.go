package server

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/dispatchermanager"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/runner"
)

// maxBatchPerWake bounds how many inbox envelopes one loop turn takes before it drains Ready,
// so a flood of input cannot delay outgoing heartbeats indefinitely.
const maxBatchPerWake = 256

// runDispatcherManager owns this node's dispatcher manager core for the changefeed. It feeds the
// core envelopes, the current epoch from etcd and ticks, and sends what the core emits.
func (w *worker) runDispatcherManager(ctx context.Context, env *sessionEnv) {
	s := env.server
	log := s.log.With(zap.String("changefeed", w.id), zap.String("role", "dispatcher-manager"))
	info, _ := w.info.Get()
	kindName := info.DispatcherKind()
	kind, ok := s.cfg.Dispatchers[kindName]
	if !ok {
		log.Error("changefeed names a dispatcher kind this node does not have; changefeed not served on this node",
			zap.String("dispatcher", kindName), zap.Strings("known", s.cfg.dispatcherNames()))
		return
	}
	sinkErrors := s.metrics.sinkErrors.WithLabelValues(w.id)
	factory, closer, err := kind(DispatcherEnv{
		ClusterID: s.cfg.ClusterID, Node: s.nodeID, Changefeed: info, DataDir: s.cfg.DataDir, Logger: log,
		OnSinkError: func(error) { sinkErrors.Inc() }, DataPlane: s.metrics.dataPlane(w.id),
	})
	if err != nil {
		log.Error("cannot build the changefeed's dispatchers; changefeed not served on this node",
			zap.String("dispatcher", kindName), zap.Error(err))
		return
	}
	closeKind := func() {
		if closer == nil {
			return
		}
		if err := closer.Close(); err != nil {
			log.Warn("closing the changefeed's sink", zap.Error(err))
		}
	}
	m, err := dispatchermanager.New(dispatchermanager.Config{
		ClusterID:         s.cfg.ClusterID,
		NodeID:            s.nodeID,
		Changefeed:        w.id,
		Incarnation:       env.incarnation,
		HeartbeatInterval: s.cfg.HeartbeatInterval,
		PollInterval:      s.cfg.PollInterval,
		PollPerDispatcher: s.cfg.PollPerDispatcher,
		UnhealthyAfter:    s.cfg.UnhealthyAfter,
		Factory:           factory,
		Logger:            log,
	}, time.Now())
	if err != nil {
		log.Error("cannot start dispatcher manager", zap.Error(err))
		s.metrics.lag.set(w.id, nil)
		closeKind()
		return
	}
	defer func() {
		// This loop's sink no longer counts for the node's health once it stops.
		s.health.set(w.id, dispatchermanager.SinkHealth{})
		s.metrics.sinkFailing.DeleteLabelValues(w.id)
		s.metrics.lag.set(w.id, nil)
		dispatchersClosing()
		if err := m.Close(); err != nil {
			log.Warn("closing dispatchers", zap.Error(err))
		}
		closeKind()
	}()
	leaders, err := etcdutil.WatchLeader(ctx, s.cli, s.keys, w.id)
	if err != nil {
		log.Error("cannot watch the changefeed's leader", zap.Error(err))
		return
	}
	// Only registered nodes are listened to; the registry may change while this loop runs.
	nodesChanged, unsubscribe := s.nodes.Subscribe()
	defer unsubscribe()
	nodes, _ := s.nodes.Get()
	m.SetNodes(liveNodeIDs(nodes))
	reader := newLeaderReader(s, w.id)
	var leader *etcdutil.Leader // the watch's newest leader, until the lease guard lets it act
	ticker := time.NewTicker(s.cfg.TickInterval)
	defer ticker.Stop()
	snapshotEvery := s.cfg.HeartbeatInterval
	var lastSnapshot time.Time
	var lastHealth dispatchermanager.SinkHealth
	s.metrics.sinkFailing.WithLabelValues(w.id).Set(0)
	for {
		select {
		case <-ctx.Done():
			return
		case l, ok := <-leaders:
			if !ok {
				return
			}
			leader = &l
		case rep := <-reader.replies:
			reader.received(rep)
			if rep.Err != nil {
				log.Warn("quick read of the changefeed's leader failed; held envelopes wait for the watch",
					zap.Error(rep.Err))
			}
		case <-nodesChanged:
			nodes, _ := s.nodes.Get()
			m.SetNodes(liveNodeIDs(nodes))
		case e := <-w.dmInbox:
			// Like ticks, requests wait while the lease may be gone: creating a dispatcher then
			// could put a second one on a span that others already re-placed.
			if !env.guard.Valid(time.Now()) {
				s.metrics.leaseGuardStalls.Inc()
				continue
			}
			scheduled := false
			takeManagerBatch(e, w.dmInbox, func(e *heartbeatpb.Envelope) {
				_, isSchedule := e.GetBody().(*heartbeatpb.Envelope_Schedule)
				scheduled = scheduled || isSchedule
				w.stepDispatcherManager(m, e, log, s)
			})
			if scheduled {
				// Report what the requests changed (a dispatcher created, stopped, prepared)
				// now rather than on the next tick: every phase of a Move waits for such a
				// report, so each tick of waiting is replication paused on the moved span.
				m.Report(time.Now())
			}
		case <-ticker.C:
			// The core's clock must not go backwards: Step is fed time.Now(), so Tick is too
			// (the ticker's fire time can be older than the last Step's).
			now := time.Now()
			// A node whose lease may have expired must not process anything more: others may
			// already own its spans. The session loop notices the loss and stops this loop.
			if !env.guard.Valid(now) {
				s.metrics.leaseGuardStalls.Inc()
				continue
			}
			m.Tick(now)
			hl := m.SinkHealth(now)
			s.health.set(w.id, hl)
			if hl.Failing != lastHealth.Failing {
				s.metrics.sinkFailing.WithLabelValues(w.id).Set(boolGauge(hl.Failing))
				lastSnapshot = time.Time{} // show the change in the status API at once
			}
			lastHealth = hl
			if now.Sub(lastSnapshot) >= snapshotEvery {
				lastSnapshot = now
				w.views.setManager(newManagerView(dispatchermanager.Brief(m), hl))
			}
		}
		// etcd's word may release held envelopes, which act: only while the lease holds.
		if env.guard.Valid(time.Now()) {
			leader = w.applyLeader(m, leader, reader, log)
		}
		reader.maybeStart(ctx, m)
		_ = runner.Manager(m.Ready(), m, runner.SendFunc(s.transport.Send)) // a SendFunc never fails
	}
}

// applyLeader hands the core what etcd said about the leader (the watch's newest value and the
// quick read's answer) and logs what the envelopes it released did. It returns nil: applied.
func (w *worker) applyLeader(m *dispatchermanager.Manager, l *etcdutil.Leader, reader *leaderReader, log *zap.Logger) *etcdutil.Leader {
	if l != nil && l.Epoch > 0 {
		if err := m.SetEpoch(l.Epoch, l.Node, time.Now()); err != nil {
			log.Warn("held envelopes confirmed by the leader watch were rejected", zap.Error(err))
		}
	}
	if rep := reader.pending; rep != nil {
		reader.pending = nil
		if err := m.OnLeaderReply(*rep, time.Now()); err != nil {
			log.Warn("held envelopes confirmed by a leader read were rejected", zap.Error(err))
		}
	}
	return nil
}

// takeBatch steps first and then up to maxBatchPerWake envelopes already waiting in inbox,
// so one wake-up handles a burst before the loop drains Ready once.
func takeBatch(first *heartbeatpb.Envelope, inbox <-chan *heartbeatpb.Envelope, step func(*heartbeatpb.Envelope)) {
	step(first)
	for i := 0; i < maxBatchPerWake; i++ {
		select {
		case e := <-inbox:
			step(e)
		default:
			return
		}
	}
}

// takeManagerBatch is takeBatch for the dispatcher manager's inbox, except that a bootstrap
// request followed in the same batch by another one from the same maintainer and epoch is
// skipped: the later one asks for the same answer with the newest config. Each carries the
// whole table list and costs the node time in proportion to it, so a node that fell behind
// would otherwise spend itself on the resends it queued meanwhile. Skipping is loss, which the
// ordering rules already allow (the later envelope has the higher seq).
func takeManagerBatch(first *heartbeatpb.Envelope, inbox <-chan *heartbeatpb.Envelope, step func(*heartbeatpb.Envelope)) {
	batch := []*heartbeatpb.Envelope{first}
	takeBatch(first, inbox, func(e *heartbeatpb.Envelope) {
		if e != first {
			batch = append(batch, e)
		}
	})
	for _, e := range dropSupersededBootstraps(batch) {
		step(e)
	}
}

// dropSupersededBootstraps returns batch without the bootstrap requests that a later one from the
// same sender and epoch supersedes, in order.
func dropSupersededBootstraps(batch []*heartbeatpb.Envelope) []*heartbeatpb.Envelope {
	type term struct {
		from  string
		epoch uint64
	}
	last := map[term]int{}
	for i, e := range batch {
		if _, ok := e.GetBody().(*heartbeatpb.Envelope_BootstrapRequest); ok {
			last[term{e.From, e.Epoch}] = i
		}
	}
	if len(last) == 0 {
		return batch
	}
	out := batch[:0:0]
	for i, e := range batch {
		if _, ok := e.GetBody().(*heartbeatpb.Envelope_BootstrapRequest); ok && last[term{e.From, e.Epoch}] != i {
			continue
		}
		out = append(out, e)
	}
	return out
}

// stepDispatcherManager feeds one envelope to the core. A rejected envelope changed nothing; it
// is counted and logged with the sender and epoch so a fenced old maintainer is visible.
func (w *worker) stepDispatcherManager(m *dispatchermanager.Manager, e *heartbeatpb.Envelope, log *zap.Logger, s *Server) {
	err := m.Step(e, time.Now())
	if errors.Is(err, dispatchermanager.ErrHeld) {
		// Not a rejection yet: etcd confirms or refutes it within a read or a watch event.
		s.metrics.held.Inc()
		log.Debug("envelope held until etcd confirms its epoch", zap.String("from", e.From), zap.Uint64("epoch", e.Epoch))
		return
	}
	if err != nil {
		s.metrics.rejected.WithLabelValues("dispatcher-manager").Inc()
		log.Warn("envelope rejected", zap.String("from", e.From), zap.Uint64("epoch", e.Epoch), zap.Error(err))
		if errors.Is(err, dispatchermanager.ErrUnknownSender) {
			s.refreshNodesSoon(log)
		}
	}
}

// newManagerView is the status API's view of one manager snapshot and its sink health.
func newManagerView(snap dispatchermanager.ManagerSnapshot, hl dispatchermanager.SinkHealth) api.ManagerView {
	v := api.ManagerView{
		Epoch: snap.Epoch, Maintainer: snap.Maintainer,
		Dispatchers: snap.Count, Journal: len(snap.Operators) + len(snap.Merges),
		SinkErrors: hl.Errors, Unhealthy: hl.Unhealthy,
	}
	if hl.Failing {
		since := hl.Since.UTC()
		v.SinkError, v.SinkFailingSince = hl.Cause, &since
	}
	return v
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

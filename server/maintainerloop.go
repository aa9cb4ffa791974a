package server

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/maintainer"
	"github.com/tidemark/tidemark/runner"
	"github.com/tidemark/tidemark/wait"
)

// runCampaign campaigns for the changefeed's maintainer role and runs the maintainer loop while
// this node holds it, until ctx ends.
func (w *worker) runCampaign(ctx context.Context, env *sessionEnv) {
	s := env.server
	log := s.log.With(zap.String("changefeed", w.id), zap.String("role", "maintainer"))
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		lead, err := etcdutil.Campaign(ctx, env.session, s.keys, w.id, s.nodeID)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("campaign failed; retrying", zap.Error(err), zap.Duration("backoff", backoff))
			wait.Sleep(ctx, backoff)
			if backoff *= 2; backoff > 3*time.Second {
				backoff = 3 * time.Second
			}
			continue
		}
		backoff = 100 * time.Millisecond
		elected := time.Now()
		s.metrics.elected.Inc()
		log.Info("elected maintainer", zap.Uint64("epoch", lead.Epoch))
		err = w.runMaintainer(ctx, env, lead, elected, log.With(zap.Uint64("epoch", lead.Epoch)))
		w.views.setMaintainer(nil)
		rctx, cancel := context.WithTimeout(context.Background(), teardownTimeout(s.cfg.SessionTTL))
		if rerr := lead.Resign(rctx); rerr != nil && ctx.Err() == nil {
			log.Warn("resign failed", zap.Error(rerr))
		}
		cancel()
		log.Info("maintainer stopped", zap.Uint64("epoch", lead.Epoch), zap.Error(err))
	}
}

// runMaintainer drives the maintainer core for one term. It returns when the term ends: ctx
// done, leadership lost (session ended or a guarded write refused), or a fatal core error.
func (w *worker) runMaintainer(ctx context.Context, env *sessionEnv, lead *etcdutil.Leadership, elected time.Time, log *zap.Logger) error {
	s := env.server
	info, _ := w.info.Get()
	persisted, err := etcdutil.GetCheckpoint(ctx, s.cli, s.keys, w.id)
	if err != nil {
		return err
	}
	if err := s.refreshNodes(ctx, log); err != nil {
		return err
	}
	nodes, _ := s.nodes.Get()
	live := liveNodeIDs(nodes)
	registered := incarnations(nodes)
	m, err := maintainer.New(maintainer.Config{
		ClusterID:           s.cfg.ClusterID,
		Changefeed:          w.id,
		SelfNode:            s.nodeID,
		Epoch:               lead.Epoch,
		ChangefeedConfig:    info.Config(),
		PersistedCheckpoint: persisted,
		Logger:              log,
	}, live, time.Now())
	if err != nil {
		return err
	}
	ops, err := s.beginTermOps(ctx, w.id, lead, elected, log) // HTTP API queries, admin queue (api_admin.go)
	if err != nil {
		return err
	}
	defer ops.close()
	// Envelopes queued for an earlier term are harmless (the cores filter them) but useless.
	drain(w.maintainerInbox)
	nodesChanged, unsubscribe := s.nodes.Subscribe()
	defer unsubscribe()
	// The node set may have changed between reading it above and subscribing.
	nodes, _ = s.nodes.Get()
	known := applyMembership(m, registered, nodes, time.Now())
	// Changefeed info changes (tables, thresholds) reach the running maintainer; the info may
	// also have changed between reading it above and subscribing.
	infoChanged, unsubscribeInfo := w.info.Subscribe()
	defer unsubscribeInfo()
	applied := updateConfig(m, info, w.info, log)
	ticker := time.NewTicker(s.cfg.TickInterval)
	defer ticker.Stop()
	publish := time.NewTicker(s.cfg.StatusPublishInterval)
	defer publish.Stop()
	// The status goes to etcd from its own goroutine (status_writer.go), ended with the term.
	pubCtx, stopPub := context.WithCancel(ctx)
	status := newStatusWriter(lead.PublishStatus, log)
	go status.run(pubCtx)
	// So does the checkpoint (runner.CheckpointWriter): the loop hands it over and goes on.
	store := termStore{ctx: pubCtx, lead: lead, metrics: s.metrics, cf: w.id, log: log}
	store.checkpoints = runner.NewCheckpointWriter(store.writeCheckpoint)
	go store.checkpoints.Run(pubCtx)
	defer func() { stopPub(); <-status.stopped(); <-store.checkpoints.Stopped() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-lead.Done():
			return errors.New("server: leadership lost")
		case <-status.stopped():
			if err := status.failed(); err != nil {
				return fmt.Errorf("server: leadership lost: %w", err)
			}
			return ctx.Err()
		case e := <-w.maintainerInbox:
			takeBatch(e, w.maintainerInbox, func(e *heartbeatpb.Envelope) { w.stepMaintainer(m, e, log, s) })
		case <-nodesChanged:
			nodes, _ := s.nodes.Get()
			known = applyMembership(m, known, nodes, time.Now())
		case <-infoChanged:
			applied = updateConfig(m, applied, w.info, log)
		case <-ticker.C:
			now := time.Now() // not the fire time: Step is fed time.Now() and the clock must not go back
			m.Tick(now)
		case res := <-store.checkpoints.Results():
			if err := res.Apply(m); err != nil {
				return err
			}
		case <-publish.C:
			if err := w.publishStatus(status, s, lead, m); err != nil {
				return err
			}
		case q := <-ops.queries():
			q(m)
		case snap, ok := <-ops.snaps:
			ops.onAdmin(snap, ok, m)
		}
		if err := w.flushMaintainer(ctx, env, lead, m, store); err != nil {
			return err
		}
		if now, err := ops.afterFlush(ctx, m); err != nil {
			return err
		} else if now {
			if err := w.publishStatus(status, s, lead, m); err != nil {
				return err
			}
		}
	}
}

// publishStatus snapshots the core for the status API and hands its summary to the term's
// status writer; it fails only once a write found the term over.
func (w *worker) publishStatus(status *statusWriter, s *Server, lead *etcdutil.Leadership, m *maintainer.Maintainer) error {
	st := m.Status()
	w.views.setMaintainer(&st)
	return status.offer(toEtcdStatus(w.id, s, lead, st))
}

// flushMaintainer performs what Ready asks (runner.Maintainer: hand the checkpoint to the
// term's writer, evict, send, Advance). Nothing is sent once the lease may be gone: a
// maintainer stops acting the moment its session is done.
func (w *worker) flushMaintainer(ctx context.Context, env *sessionEnv, lead *etcdutil.Leadership, m *maintainer.Maintainer, st termStore) error {
	rd := m.Ready()
	if !env.guard.Valid(time.Now()) {
		return errors.New("server: lease may have expired; maintainer stops acting")
	}
	select {
	case <-lead.Done():
		return errors.New("server: leadership lost")
	default:
	}
	return runner.Maintainer(runner.Ready(rd), sentHook{m, ctx, rd.Messages, st.log}, st, runner.SendFunc(env.server.transport.Send))
}

// sentHook runs the failpoints of the messages just sent (operator-*-sent,
// bootstrap-request-sent) right before the core's Advance, as a crash there would fall.
type sentHook struct {
	*maintainer.Maintainer
	ctx  context.Context
	msgs []*heartbeatpb.Envelope
	log  *zap.Logger
}

func (h sentHook) Advance() {
	afterSend(h.ctx, h.msgs, h.log)
	h.Maintainer.Advance()
}

// termStore is the etcd side of one maintainer term: every write is guarded by the election key,
// so a deposed maintainer can never persist a checkpoint or evict anyone. Only a lost
// leadership ends the term; other failures are logged and asked again by the core. Checkpoints
// go to the term's writer, which writes them from its own goroutine.
type termStore struct {
	ctx         context.Context
	lead        *etcdutil.Leadership
	metrics     *metrics
	cf          string
	log         *zap.Logger
	checkpoints *runner.CheckpointWriter
}

// PersistCheckpoint hands cp to the term's writer (runner.Pending): its result comes back to
// the loop, which applies it to the core.
func (st termStore) PersistCheckpoint(cp uint64) (runner.Written, error) {
	return st.checkpoints.PersistCheckpoint(cp)
}

// writeCheckpoint is the write itself, on the writer's goroutine.
func (st termStore) writeCheckpoint(cp uint64) (bool, error) {
	beforePersist(st.ctx, st.log) // failpoint checkpoint-before-persist
	persisted, err := st.lead.AdvanceCheckpoint(st.ctx, cp)
	if err != nil {
		if errors.Is(err, etcdutil.ErrNotLeader) {
			return false, err
		}
		st.log.Warn("persisting checkpoint failed; will retry", zap.Uint64("checkpoint", cp), zap.Error(err))
		return false, nil
	}
	st.metrics.checkpoint.WithLabelValues(st.cf).Set(float64(persisted))
	afterPersist(st.ctx, st.log) // failpoint checkpoint-after-persist
	return true, nil
}

// Evict deletes a silent node's registration. A failed delete is asked again by the core on its
// throttle while the node stays silent.
func (st termStore) Evict(node string) error {
	if err := st.lead.EvictNode(st.ctx, node); err != nil {
		if errors.Is(err, etcdutil.ErrNotLeader) {
			return err
		}
		st.log.Warn("evicting silent node failed; will retry", zap.String("evicted", node), zap.Error(err))
		return nil
	}
	st.metrics.evicted.WithLabelValues(st.cf).Inc()
	// log already names this node ("node") and the epoch that guarded the delete ("epoch").
	st.log.Warn("evicted node silent past the bootstrap timeout", zap.String("evicted", node))
	return nil
}

func (w *worker) stepMaintainer(m *maintainer.Maintainer, e *heartbeatpb.Envelope, log *zap.Logger, s *Server) {
	booted, start := m.Bootstrapped(), time.Now()
	err := m.Step(e, start)
	if !booted && m.Bootstrapped() {
		// The answer that completed the set: this Step restored and applied the plan.
		took := time.Since(start)
		s.metrics.restore.WithLabelValues(w.id).Observe(took.Seconds())
		log.Info("restored from the bootstrap answers", zap.String("last_from", e.From),
			zap.Duration("took", took.Round(time.Millisecond)))
	}
	if err != nil {
		s.metrics.rejected.WithLabelValues("maintainer").Inc()
		log.Warn("envelope rejected", zap.String("from", e.From), zap.Uint64("epoch", e.Epoch), zap.Error(err))
		if errors.Is(err, maintainer.ErrUnknownSender) {
			s.refreshNodesSoon(log) // a node that joined during the term, behind this node's watch
		}
	}
}

// updateConfig hands the newest changefeed config to the maintainer when it differs from the
// one made from applied, and returns the info whose config the maintainer now runs. A refused
// config (for example a redo change, which needs a restart) is logged and the maintainer keeps
// the one it has. The infos are compared, not their configs: a config of a million tables is
// 16 MB, and keeping one to compare with was a second copy beside the maintainer's.
func updateConfig(m *maintainer.Maintainer, applied etcdutil.ChangefeedInfo, info *latest[etcdutil.ChangefeedInfo],
	log *zap.Logger) etcdutil.ChangefeedInfo {
	latestInfo, _ := info.Get()
	if latestInfo.SameConfig(&applied) {
		return applied
	}
	if err := m.UpdateConfig(latestInfo.Config(), time.Now()); err != nil {
		log.Warn("changefeed config change refused; keeping the running config", zap.Error(err))
		return applied
	}
	return latestInfo
}

// applyMembership tells the core which nodes joined and left since known (node -> incarnation of
// its registration), and returns the new map. A node registered again under a new incarnation
// left and joined: its old session ended and stopped all its work (an evicted node re-registers
// within a few hundred milliseconds, and the node watch may show the delete and the new key as
// one change, so the core must still learn of the leave).
func applyMembership(m *maintainer.Maintainer, known map[string]uint64, nodes map[string]etcdutil.NodeInfo,
	now time.Time) map[string]uint64 {
	next := incarnations(nodes)
	for _, id := range sortedKeys(known) {
		if inc, ok := next[id]; !ok || inc != known[id] {
			m.NodeLeft(id, now)
		}
	}
	for _, id := range sortedKeys(next) {
		if inc, ok := known[id]; !ok || inc != next[id] {
			m.NodeJoined(id, now)
		}
	}
	return next
}

func incarnations(nodes map[string]etcdutil.NodeInfo) map[string]uint64 {
	out := make(map[string]uint64, len(nodes))
	for id, n := range nodes {
		out[id] = n.Incarnation
	}
	return out
}

func sortedKeys(m map[string]uint64) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func liveNodeIDs(nodes map[string]etcdutil.NodeInfo) []string {
	out := make([]string, 0, len(nodes))
	for id := range nodes {
		out = append(out, id)
	}
	return out
}

func drain(ch chan *heartbeatpb.Envelope) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// toEtcdStatus is the summary a maintainer publishes to etcd for ctl and the playground. The
// full listings stay in the HTTP API: etcd values stay small.
func toEtcdStatus(cf string, s *Server, lead *etcdutil.Leadership, st maintainer.Status) etcdutil.ChangefeedStatus {
	var errs map[string]etcdutil.NodeSpanErrors
	if len(st.SpanErrors) > 0 {
		errs = make(map[string]etcdutil.NodeSpanErrors, len(st.SpanErrors))
		for node, e := range st.SpanErrors {
			errs[node] = etcdutil.NodeSpanErrors{Spans: e.Spans, Error: e.Error}
		}
	}
	return etcdutil.ChangefeedStatus{
		SpanErrors:           errs,
		Changefeed:           cf,
		Maintainer:           s.nodeID,
		MaintainerStatusAddr: s.statusAddr,
		Epoch:                lead.Epoch,
		CheckpointTs:         st.Checkpoint,
		Spans:                st.Spans,
		Operators:            len(st.Operators),
		NodeSpans:            st.NodeSpans,
		Bootstrapped:         st.Bootstrapped,
		UpdatedAt:            time.Now().UTC(),
	}
}

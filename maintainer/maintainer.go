package maintainer

import (
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

// nodeState is how far the maintainer got with one live node.
type nodeState int

const (
	// nodeBootstrapping: a bootstrap request is out; the node gets no work until it answers.
	nodeBootstrapping nodeState = iota
	// nodeReady: it answered; it may receive spans.
	nodeReady
)

type nodeInfo struct {
	state  nodeState
	sentAt time.Time // last bootstrap request
	// nudged: a heartbeat of this term came after sentAt and the request was sent again at once.
	nudged bool
	// joined: when it was first asked. A node that joins during bootstrap (an evicted node
	// registering again) gets its own BootstrapTimeout, so it is not evicted again at once.
	joined time.Time
	silent bool // missed the initial bootstrap deadline; being evicted until it answers or leaves
	// evictAt: last eviction asked for this silent node (repeated on the resend throttle).
	evictAt time.Time
}

// Ready is what the runner must do next: persist Checkpoint (when > 0, CAS forward only), then
// send Messages, and evict the nodes in Evict.
type Ready struct {
	Messages   []*heartbeatpb.Envelope
	Checkpoint uint64
	// Evict lists live nodes (sorted) that stayed silent past BootstrapTimeout. The runner deletes
	// each one's registration with a write guarded by its election key; the node's lease guard
	// then stops all its dispatchers and it rejoins empty. The restore waits for NodeLeft (or a
	// late answer, which cancels the eviction), so no span of a silent node is re-placed while
	// its dispatchers may still run.
	Evict []string
}

// Maintainer is the deterministic core of one changefeed's maintainer. It is not safe for
// concurrent use: one runner goroutine drives it.
type Maintainer struct {
	cfg Config
	log *zap.Logger
	now time.Time // latest time seen, for Status

	nodes        map[string]*nodeInfo
	bootstrapped bool
	responses    map[string]*heartbeatpb.MaintainerBootstrapResponse

	db      *spanDB
	ctl     *operator.Controller
	opSpans map[heartbeatpb.OperatorID][]spanID // spans each DB-linked operator holds
	// restored: operators resumed by the bootstrap restore; schedulers wait until all are done.
	restored map[heartbeatpb.OperatorID]bool

	nextDispatcher, nextOperator uint64

	persisted  uint64 // last checkpoint the runner persisted (or was given)
	checkpoint uint64 // latest computed changefeed checkpoint, never below persisted

	// Outgoing traffic, collected until Ready.
	outSchedule  map[string][]heartbeatpb.ScheduleDispatcherRequest
	outBootstrap map[string]bool
	outAcks      map[string][]heartbeatpb.OperatorID
	outResponse  map[string]bool
	outEvict     map[string]bool
	sendSeq      *heartbeatpb.Sequencer
	recvOrder    *heartbeatpb.OrderFilter
	ready        *Ready

	admin  adminState  // admin requests and drained nodes (admin.go)
	health healthState // unhealthy nodes and erroring dispatchers (health.go)
	sched  schedState  // split/merge load tracking, table changes, config pushes, merges (tables.go)
}

// New returns a maintainer that starts bootstrapping liveNodes at once.
func New(cfg Config, liveNodes []string, now time.Time) (*Maintainer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Maintainer{
		cfg:          cfg,
		log:          cfg.Logger.With(zap.String("changefeed", cfg.Changefeed), zap.Uint64("epoch", cfg.Epoch)),
		now:          now,
		nodes:        make(map[string]*nodeInfo),
		responses:    make(map[string]*heartbeatpb.MaintainerBootstrapResponse),
		db:           newSpanDB(0),
		opSpans:      make(map[heartbeatpb.OperatorID][]spanID),
		persisted:    cfg.PersistedCheckpoint,
		checkpoint:   cfg.PersistedCheckpoint,
		outSchedule:  make(map[string][]heartbeatpb.ScheduleDispatcherRequest),
		outBootstrap: make(map[string]bool),
		outAcks:      make(map[string][]heartbeatpb.OperatorID),
		outResponse:  make(map[string]bool),
		outEvict:     make(map[string]bool),
		sendSeq:      heartbeatpb.NewSequencer(),
		recvOrder:    heartbeatpb.NewOrderFilter(),
	}
	m.ctl = operator.NewController(operator.ControllerConfig{
		MaxPerNode:     cfg.MaxOperatorsPerNode,
		MaxTotal:       cfg.MaxOperators,
		ResendInterval: cfg.ResendInterval,
		StuckAfter:     cfg.StuckOperatorAfter,
		PhaseTimeout:   cfg.PhaseTimeout,
		Logger:         m.log,
	})
	for _, n := range liveNodes {
		m.NodeJoined(n, now)
	}
	m.log.Info("maintainer started, bootstrapping", zap.Int("nodes", len(m.nodes)))
	m.maybeFinishBootstrap(now)
	return m, nil
}

// NodeJoined adds a live node; it is asked for its dispatchers before it gets any work.
func (m *Maintainer) NodeJoined(id string, now time.Time) {
	m.now = now
	if id == "" || m.nodes[id] != nil {
		return
	}
	m.nodes[id] = &nodeInfo{state: nodeBootstrapping, sentAt: now, joined: now}
	m.outBootstrap[id] = true
	m.log.Info("node joined", zap.String("node", id))
}

// NodeLeft drops a node: its operators learn of the loss, its spans go back to absent.
func (m *Maintainer) NodeLeft(id string, now time.Time) {
	m.now = now
	if m.nodes[id] == nil {
		return
	}
	delete(m.nodes, id)
	delete(m.responses, id)
	delete(m.outSchedule, id)
	delete(m.outBootstrap, id)
	delete(m.outAcks, id)
	delete(m.outResponse, id)
	delete(m.outEvict, id)
	m.log.Info("node left", zap.String("node", id))
	if !m.bootstrapped {
		m.maybeFinishBootstrap(now)
		return
	}
	m.emit(m.ctl.OnNodeRemoved(id, now))
	m.applyFinished(now)
	lost := 0
	for _, sid := range m.db.onNode(id) {
		r := m.db.get(sid)
		if r.op != noOp {
			// Still running after OnNodeRemoved: a Move whose origin already stopped and which
			// now only waits for its dest. Its result rebinds or releases the span.
			if _, running := m.ctl.Get(r.op); !running {
				panic(fmt.Sprintf("maintainer: span %s on lost node %s held by finished operator %v",
					span.String(r.span), id, r.op))
			}
			continue
		}
		m.db.markAbsent(sid, m.db.checkpoint(sid))
		lost++
	}
	m.log.Info("spans of lost node marked absent", zap.String("node", id), zap.Int("spans", lost))
}

// Tick drives time: bootstrap resends and timeout, operator resends, the scheduler and the
// checkpoint.
func (m *Maintainer) Tick(now time.Time) {
	m.now = now
	m.resendBootstrap(now)
	m.resendConfig(now)
	if !m.bootstrapped {
		m.timeoutBootstrap(now)
		return
	}
	m.emit(m.ctl.Tick(now))
	m.applyFinished(now)
	// Admin requests run before the schedulers so they take operator slots first.
	m.adminTick(now)
	// Repair never waits: absent spans are placed while restored operators still run (they hold
	// only their own spans), so one operator waiting on a slow node cannot hold back the rest.
	m.collectRemovedTables(now) // before the basic scheduler could place their spans again
	m.schedule(now)
	// Optimisation waits until the restored operators are done (each is bounded by the phase
	// timeout), so it decides on the schedule the last term left, not on a half-restored one.
	if !m.restoring() {
		m.splitAndMerge(now) // after repair, before balance: balance waits for a quiet schedule
		m.balance(now)
	}
	m.updateCheckpoint()
}

// Ready returns what to persist and send. It returns the same value until Advance.
func (m *Maintainer) Ready() Ready {
	if m.ready == nil {
		m.ready = m.buildReady()
	}
	return *m.ready
}

// CheckpointNotPersisted tells the core that the runner could not persist the current Ready's
// Checkpoint. The next Advance then leaves the persisted checkpoint as it was, so Status never
// shows a checkpoint etcd does not hold and the next Ready asks again.
func (m *Maintainer) CheckpointNotPersisted() {
	if m.ready != nil {
		m.ready.Checkpoint = 0
	}
}

// Advance acknowledges the last Ready: its checkpoint is persisted and its messages handed to
// the transport.
func (m *Maintainer) Advance() {
	if m.ready == nil {
		return
	}
	if m.ready.Checkpoint > m.persisted {
		m.persisted = m.ready.Checkpoint
	}
	m.ready = nil
}

func (m *Maintainer) buildReady() *Ready {
	rd := &Ready{}
	if m.bootstrapped && m.checkpoint > m.persisted {
		rd.Checkpoint = m.checkpoint
	}
	dests := make(map[string]bool)
	for n := range m.outBootstrap {
		dests[n] = true
	}
	for n := range m.outAcks {
		dests[n] = true
	}
	for n := range m.outResponse {
		dests[n] = true
	}
	for n := range m.outSchedule {
		dests[n] = true
	}
	for n := range m.sched.outMerge {
		dests[n] = true
	}
	sorted := make([]string, 0, len(dests))
	for n := range dests {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		if m.outBootstrap[n] {
			env := m.envelope(n)
			env.Body = &heartbeatpb.Envelope_BootstrapRequest{
				BootstrapRequest: &heartbeatpb.MaintainerBootstrapRequest{Config: *m.cfg.ChangefeedConfig},
			}
			rd.Messages = append(rd.Messages, env)
		}
		if acks := dedupe(m.outAcks[n]); len(acks) > 0 || m.outResponse[n] {
			env := m.envelope(n)
			env.Body = &heartbeatpb.Envelope_HeartbeatResponse{
				HeartbeatResponse: &heartbeatpb.HeartBeatResponse{Finished: acks, CheckpointTs: max(m.persisted, rd.Checkpoint)},
			}
			rd.Messages = append(rd.Messages, env)
		}
		if reqs := m.outSchedule[n]; len(reqs) > 0 {
			env := m.envelope(n)
			env.Body = &heartbeatpb.Envelope_Schedule{
				Schedule: &heartbeatpb.ScheduleDispatcherRequests{Requests: reqs},
			}
			rd.Messages = append(rd.Messages, env)
		}
		if reqs := m.sched.outMerge[n]; len(reqs) > 0 {
			env := m.envelope(n)
			env.Body = &heartbeatpb.Envelope_Merge{Merge: &heartbeatpb.MergeDispatcherRequests{Requests: reqs}}
			rd.Messages = append(rd.Messages, env)
		}
	}
	for n := range m.outEvict {
		rd.Evict = append(rd.Evict, n)
	}
	sort.Strings(rd.Evict)
	clear(m.outEvict)
	clear(m.sched.outMerge)
	clear(m.outBootstrap)
	clear(m.outAcks)
	clear(m.outResponse)
	clear(m.outSchedule)
	return rd
}

// envelope returns the header every maintainer message carries, numbered for node.
func (m *Maintainer) envelope(node string) *heartbeatpb.Envelope {
	return &heartbeatpb.Envelope{
		ClusterId:   m.cfg.ClusterID,
		Changefeed:  m.cfg.Changefeed,
		From:        m.cfg.SelfNode,
		To:          node,
		Epoch:       m.cfg.Epoch,
		Incarnation: m.cfg.Epoch,
		Seq:         m.sendSeq.Next(node),
	}
}

// emit queues operator requests, batched per destination node.
func (m *Maintainer) emit(out []operator.Outgoing) {
	for _, o := range out {
		if m.nodes[o.Node] == nil {
			continue
		}
		if o.Merge != nil {
			m.queueMerge(o.Node, o.Merge)
		}
		if o.Schedule != nil {
			m.outSchedule[o.Node] = append(m.outSchedule[o.Node], *o.Schedule)
		}
	}
}

// updateCheckpoint recomputes the changefeed checkpoint: the minimum over every span and mode,
// absent spans counting with the ts they resume from. It never moves backwards.
func (m *Maintainer) updateCheckpoint() {
	cp, ok := m.db.minCheckpoint()
	if ok && cp > m.checkpoint {
		m.checkpoint = cp
	}
}

// dedupe drops repeated operator IDs, keeping first occurrences in order: an operator can be
// both finished here and listed in the same node's journal.
func dedupe(ids []heartbeatpb.OperatorID) []heartbeatpb.OperatorID {
	if len(ids) < 2 {
		return ids
	}
	seen := make(map[heartbeatpb.OperatorID]bool, len(ids))
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

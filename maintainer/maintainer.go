package maintainer

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

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
// concurrent use: one runner goroutine drives it. It routes inputs to the parts that own them
// (see doc.go) and holds what they share.
type Maintainer struct {
	cfg Config
	log *zap.Logger
	now time.Time // latest time seen, for Status

	nodes        nodeSet
	bootstrapped bool
	responses    map[string]*heartbeatpb.MaintainerBootstrapResponse
	mirrors      nodeMirrors // each node's dispatcher set as reported (mirror.go)
	chunks       assemblies  // answers coming in pieces (chunks.go)

	db  *spanDB
	ctl *operator.Controller
	ops *opRunner

	cp checkpointState // computed, persisted and being written (checkpoint.go)

	out       *outbox
	recvOrder *heartbeatpb.OrderFilter
	ready     *Ready

	admin  *adminQueue   // admin requests (admin*.go)
	errs   spanErrors    // erroring dispatchers (health.go)
	loads  loadTracker   // split/merge load reports and cool-downs (loads.go)
	tables *tableChanges // tables leaving and coming back (tables.go)
	config configPush    // nodes yet to confirm the latest config (config_push.go)
	// backlog: the last round of place left absent spans for want of room (scheduler.go).
	backlog bool
}

// New returns a maintainer that starts bootstrapping liveNodes at once.
func New(cfg Config, liveNodes []string, now time.Time) (*Maintainer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.ChangefeedConfig = compactConfig(cfg.ChangefeedConfig)
	m := &Maintainer{
		cfg:       cfg,
		log:       cfg.Logger.With(zap.String("changefeed", cfg.Changefeed), zap.Uint64("epoch", cfg.Epoch)),
		now:       now,
		nodes:     newNodeSet(),
		responses: make(map[string]*heartbeatpb.MaintainerBootstrapResponse),
		mirrors:   make(nodeMirrors),
		chunks:    newAssemblies(),
		db:        newSpanDB(0),
		cp:        checkpointState{persisted: cfg.PersistedCheckpoint, computed: cfg.PersistedCheckpoint},
		recvOrder: heartbeatpb.NewOrderFilter(),
	}
	m.out = newOutbox(func(n string) bool { return m.nodes.get(n) != nil })
	m.ctl = operator.NewController(operator.ControllerConfig{
		MaxPerNode:     cfg.MaxOperatorsPerNode,
		MaxTotal:       cfg.MaxOperators,
		ResendInterval: cfg.ResendInterval,
		StuckAfter:     cfg.StuckOperatorAfter,
		PhaseTimeout:   cfg.PhaseTimeout,
		Logger:         m.log,
	})
	m.ops = &opRunner{cfg: &m.cfg, log: m.log, db: m.db, ctl: m.ctl, out: m.out, loads: &m.loads,
		held: make(map[heartbeatpb.OperatorID][]spanID)}
	m.admin = &adminQueue{cfg: &m.cfg, log: m.log, nodes: &m.nodes, ops: m.ops}
	m.tables = &tableChanges{ops: m.ops}
	for _, n := range liveNodes {
		m.NodeJoined(n, now)
	}
	m.log.Info("maintainer started, bootstrapping", zap.Int("nodes", len(m.nodes.live)))
	m.finishBootstrap(now)
	return m, nil
}

// view is the read-only view the schedulers decide from.
func (m *Maintainer) view() schedView {
	return schedView{cfg: &m.cfg, db: m.db, nodes: &m.nodes, ctl: m.ctl, loads: &m.loads, tables: m.tables}
}

// NodeJoined adds a live node; it is asked for its dispatchers before it gets any work.
func (m *Maintainer) NodeJoined(id string, now time.Time) {
	m.now = now
	if id == "" || m.nodes.get(id) != nil {
		return
	}
	m.nodes.live[id] = &nodeInfo{state: nodeBootstrapping, sentAt: now, joined: now}
	m.out.bootstrap[id] = true
	m.log.Info("node joined", zap.String("node", id))
}

// NodeLeft drops a node: its operators learn of the loss, its spans go back to absent.
func (m *Maintainer) NodeLeft(id string, now time.Time) {
	m.now = now
	if m.nodes.get(id) == nil {
		return
	}
	delete(m.nodes.live, id)
	delete(m.responses, id)
	delete(m.mirrors, id)
	m.chunks.forget(id)
	m.out.drop(id)
	m.log.Info("node left", zap.String("node", id))
	if !m.bootstrapped {
		m.finishBootstrap(now)
		return
	}
	m.out.emit(m.ctl.OnNodeRemoved(id, now))
	m.ops.applyFinished()
	lost := 0
	for _, sid := range m.db.onNode(id) {
		r := m.db.get(sid)
		if r.op != noOp {
			// Still running after OnNodeRemoved: a Move whose origin already stopped and which
			// now only waits for its dest. Its result rebinds or releases the span.
			if _, running := m.ctl.Get(r.op); !running {
				panic(fmt.Sprintf("maintainer: span %s on lost node %s held by finished operator %v",
					span.String(m.db.spanOf(sid)), id, r.op))
			}
			continue
		}
		m.db.markAbsent(sid, m.db.checkpoint(sid))
		lost++
	}
	m.log.Info("spans of lost node marked absent", zap.String("node", id), zap.Int("spans", lost))
}

// Tick drives time: bootstrap resends and timeout, operator resends, admin requests, the
// schedulers and the checkpoint.
func (m *Maintainer) Tick(now time.Time) {
	m.now = now
	m.bootstrapTick(now)
	if !m.bootstrapped {
		return
	}
	m.out.emit(m.ctl.Tick(now))
	m.ops.applyFinished()
	// Admin requests run before the schedulers so they take operator slots first.
	m.admin.tick(now)
	v := m.view()
	drain(v, m.ops, now) // drained and unhealthy nodes are emptied further
	m.admin.settleDrains()
	// Repair never waits: absent spans are placed while restored operators still run (they hold
	// only their own spans), so one operator waiting on a slow node cannot hold back the rest.
	m.tables.collect(insertFrom(m.cp.computed, m.cfg.ChangefeedConfig), now) // before the basic scheduler could place their spans again
	m.backlog = place(v, m.ops, now, 1)
	// Optimisation waits until the restored operators are done (each is bounded by the phase
	// timeout), so it decides on the schedule the last term left, not on a half-restored one.
	if !m.ops.restoring() {
		splitAndMerge(v, m.ops, m.log, now) // after repair, before balance: balance waits for a quiet schedule
		balance(v, m.ops, now)
	}
	m.cp.update(m.db)
	reclaim(m.db, m.admin, &m.errs)
}

// reclaim empties the span DB's tombstones that no admin request reads any more (operators
// never hold a retired span: they retire their own spans as they finish, and the schedulers
// retire only free ones). It runs at the end of a tick, never while an operator's result is
// being applied, so no record is emptied under the code that retired it.
func reclaim(db *spanDB, a *adminQueue, errs *spanErrors) {
	if len(db.tombs) == 0 {
		return
	}
	held := a.holding()
	for _, sid := range db.reclaim(func(sid spanID) bool { return held[sid] }) {
		delete(errs.errs, sid)
	}
}

// Ready returns what to persist and send. It returns the same value until Advance.
//
// Its messages carry the checkpoint etcd is known to hold (persisted), never the one the Ready
// asks to persist: the runner writes that off the loop (a guarded read and a txn, a raft commit
// each) and reports back through CheckpointPersisted, so a message never waits for etcd and
// still never names a checkpoint etcd may lack. One write is in flight at a time; the newest
// computed checkpoint is asked for once it is answered.
func (m *Maintainer) Ready() Ready {
	if m.ready == nil {
		rd := &Ready{}
		if m.bootstrapped {
			rd.Checkpoint = m.cp.due()
		}
		m.out.take(header{cfg: &m.cfg, checkpoint: m.cp.persisted}, rd)
		m.ready = rd
	}
	return *m.ready
}

// Advance acknowledges the last Ready: its messages are handed to the transport and its
// checkpoint, if any, to the writer, which answers with CheckpointPersisted or
// CheckpointNotPersisted.
func (m *Maintainer) Advance() {
	if m.ready == nil {
		return
	}
	m.cp.handedOver(m.ready.Checkpoint)
	m.ready = nil
}

// CheckpointPersisted tells the core that etcd holds cp, the checkpoint of an advanced Ready.
// From here on messages and Status carry it.
func (m *Maintainer) CheckpointPersisted(cp uint64) { m.cp.written(cp) }

// CheckpointNotPersisted tells the core that the write of the checkpoint an advanced Ready
// handed over failed. The persisted checkpoint stays as it was, so Status never shows a
// checkpoint etcd does not hold, and the next Ready asks again with the newest one.
func (m *Maintainer) CheckpointNotPersisted() { m.cp.failed() }

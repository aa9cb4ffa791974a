package dispatchermanager

import (
	"errors"
	"fmt"
	"math"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// Errors returned by Step; each wraps one of these so the caller can count and branch.
var (
	// ErrInvalid: the envelope is malformed or not meant for this manager.
	ErrInvalid = errors.New("dispatchermanager: invalid input")
	// ErrStaleEpoch: the sender's epoch is below the current one (fencing, I5).
	ErrStaleEpoch = errors.New("dispatchermanager: stale epoch")
	// ErrNotLeader: the envelope carries the confirmed epoch but another sender than the node
	// etcd names as its leader.
	ErrNotLeader = errors.New("dispatchermanager: sender is not the leader etcd confirmed")
	// ErrUnknownSender: the claimed sender is not a registered node.
	ErrUnknownSender = errors.New("dispatchermanager: sender is not a registered node")
	// ErrHeld: the epoch is above the one etcd confirmed; the envelope is held until etcd
	// confirms its epoch and sender (then it is stepped) or refutes them (then it is dropped).
	ErrHeld = errors.New("dispatchermanager: epoch not confirmed by etcd; envelope held")
	// ErrDuplicate: the envelope is not newer than the last one accepted from its sender.
	ErrDuplicate = errors.New("dispatchermanager: duplicate or reordered envelope")
	// ErrNotBootstrapped: a request arrived before any changefeed config.
	ErrNotBootstrapped = errors.New("dispatchermanager: not bootstrapped")
	// ErrClosed: the manager was closed.
	ErrClosed = errors.New("dispatchermanager: closed")
)

// DefaultHeartbeatInterval is the periodic report period when Config leaves it zero.
const DefaultHeartbeatInterval = time.Second

// Config configures a Manager for one node and changefeed.
type Config struct {
	ClusterID, NodeID, Changefeed string
	Incarnation                   uint64
	HeartbeatInterval             time.Duration // periodic report (journal, digest) period; default 1s
	// UnhealthyAfter: how long the sink may fail before SinkHealth says Unhealthy; default 30s.
	UnhealthyAfter time.Duration
	// ChunkBytes: the most bytes of statuses and journal entries one bootstrap answer or
	// heartbeat envelope carries; larger ones go in several (chunks.go). Default
	// DefaultChunkBytes; the simulator makes it small so that answers split.
	ChunkBytes int
	// PollInterval: the least time between two polls of every working dispatcher (checkpoint,
	// load, own error); zero polls on every Tick. A poll visits every dispatcher of the node,
	// so on every 100 ms tick at a few hundred thousand dispatchers the passes alone took a
	// core's fifth per node. Between polls a Tick still reports state changes (creates, stops,
	// removals, rejections) at once; only checkpoints and loads wait for the next poll.
	PollInterval time.Duration
	// PollPerDispatcher: added to PollInterval for every dispatcher of the node, so the spacing
	// grows with the set: a few thousand dispatchers are polled on every tick, as before, while
	// a third of a million are polled every half second rather than every 100 ms tick.
	PollPerDispatcher time.Duration
	Factory           dispatcher.Factory
	Logger            *zap.Logger
}

// Manager is the deterministic core of one changefeed on one node. Not safe for concurrent use:
// its runner calls every method, Snapshot included, from one loop.
type Manager struct {
	cfg Config
	log *zap.Logger

	gate       gate                          // etcd's leader, the registry and held envelopes
	changefeed *heartbeatpb.ChangefeedConfig // nil until the first bootstrap request
	tables     heartbeatpb.TableCatalogue    // the changefeed's tables, from the last bootstrap request
	checkpoint uint64                        // highest changefeed checkpoint seen

	table   dispatcherTable // the dispatchers and their removal records
	journal journal         // the schedule and merge requests in flight

	out        outbox
	rejections []heartbeatpb.RequestRejection
	lastReport time.Time // when the last periodic report went out
	lastPoll   time.Time // when every working dispatcher was last polled
	listingDue bool      // the maintainer asked for a full listing
	// chunkBudget: the most bytes of items per envelope (chunks.go). ChunkBytes once a
	// bootstrap request showed a maintainer that numbers its requests, hence puts pieces
	// together; unbounded before, so a maintainer of an older version gets whole answers.
	chunkBudget int
	sentMarks   []heartbeatpb.Watermark // the watermarks the last heartbeat carried
	sink        sinkState
	closed      bool
}

// New checks cfg and returns an empty manager.
func New(cfg Config, now time.Time) (*Manager, error) {
	switch {
	case cfg.ClusterID == "":
		return nil, fmt.Errorf("%w: config: empty ClusterID", ErrInvalid)
	case cfg.NodeID == "":
		return nil, fmt.Errorf("%w: config: empty NodeID", ErrInvalid)
	case cfg.Changefeed == "":
		return nil, fmt.Errorf("%w: config: empty Changefeed", ErrInvalid)
	case cfg.Factory == nil:
		return nil, fmt.Errorf("%w: config: nil Factory", ErrInvalid)
	case cfg.HeartbeatInterval < 0:
		return nil, fmt.Errorf("%w: config: negative HeartbeatInterval %s", ErrInvalid, cfg.HeartbeatInterval)
	case cfg.PollInterval < 0:
		return nil, fmt.Errorf("%w: config: negative PollInterval %s", ErrInvalid, cfg.PollInterval)
	case cfg.PollPerDispatcher < 0:
		return nil, fmt.Errorf("%w: config: negative PollPerDispatcher %s", ErrInvalid, cfg.PollPerDispatcher)
	case cfg.UnhealthyAfter < 0:
		return nil, fmt.Errorf("%w: config: negative UnhealthyAfter %s", ErrInvalid, cfg.UnhealthyAfter)
	case cfg.ChunkBytes < 0:
		return nil, fmt.Errorf("%w: config: negative ChunkBytes %d", ErrInvalid, cfg.ChunkBytes)
	}
	if cfg.ChunkBytes == 0 {
		cfg.ChunkBytes = DefaultChunkBytes
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.UnhealthyAfter == 0 {
		cfg.UnhealthyAfter = DefaultUnhealthyAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	log := cfg.Logger.With(zap.String("changefeed", cfg.Changefeed), zap.String("node", cfg.NodeID))
	m := &Manager{
		cfg:  cfg,
		log:  log,
		gate: gate{recv: heartbeatpb.NewOrderFilter()},
		table: dispatcherTable{
			dispatchers: map[heartbeatpb.DispatcherID]*dispatcherEntry{},
			working:     newWorkingIndex(),
			records:     map[heartbeatpb.OperatorID][]heartbeatpb.DispatcherID{},
		},
		journal: journal{
			current: map[span.Key]*journalEntry{},
			redo:    map[span.Key]*journalEntry{},
			merges:  map[heartbeatpb.DispatcherID]*mergeEntry{},
			inMerge: map[heartbeatpb.DispatcherID]heartbeatpb.DispatcherID{},
		},
		out:         outbox{seq: heartbeatpb.NewSequencer()},
		chunkBudget: math.MaxInt,
	}
	m.table.log = log
	return m, nil
}

// Step handles one envelope from a maintainer. Any error means nothing was changed; an error
// wrapping ErrHeld means the envelope waits for etcd to confirm its epoch (SetEpoch,
// OnLeaderReply) and is stepped then, or dropped.
func (m *Manager) Step(env *heartbeatpb.Envelope, now time.Time) error {
	if m.closed {
		return ErrClosed
	}
	if err := m.cfg.checkHeader(env); err != nil {
		return err
	}
	if err := m.gate.admit(env); err != nil {
		return err
	}
	if err := m.cfg.checkBody(env); err != nil {
		return err
	}
	if env.Epoch > m.gate.epoch {
		// Never adopted on the sender's word: etcd must name this epoch and sender first.
		m.gate.hold(env, now)
		return fmt.Errorf("%w: from %s epoch %d, confirmed %d", ErrHeld, env.From, env.Epoch, m.gate.epoch)
	}
	_, isBootstrap := env.Body.(*heartbeatpb.Envelope_BootstrapRequest)
	if m.changefeed == nil && !isBootstrap {
		return fmt.Errorf("%w: %T from %s before any bootstrap request", ErrNotBootstrapped, env.Body, env.From)
	}
	// Accepted: from here on the envelope takes effect.
	m.gate.recv.Accept(env)
	switch b := env.Body.(type) {
	case *heartbeatpb.Envelope_BootstrapRequest:
		// The answer reports only durable checkpoints: flush so they are current. A failing
		// sink does not hold the answer back (the new maintainer must hear of this node); it
		// then carries the older durable checkpoints and the error.
		m.sink.flushDurable(m.cfg.Factory, &m.table, now, m.log)
		m.onBootstrap(env.From, b.BootstrapRequest)
	case *heartbeatpb.Envelope_Schedule:
		for i := range b.Schedule.Requests {
			m.onSchedule(&b.Schedule.Requests[i], now)
		}
	case *heartbeatpb.Envelope_Merge:
		for i := range b.Merge.Requests {
			m.onMerge(&b.Merge.Requests[i])
		}
	case *heartbeatpb.Envelope_HeartbeatResponse:
		m.onHeartbeatResponse(b.HeartbeatResponse)
	default:
		panic(fmt.Sprintf("dispatchermanager: body %T passed checkBody", env.Body))
	}
	return nil
}

// Tick polls every working dispatcher, retries unfinished local effects, moves merges one stage
// on, and queues a heartbeat when something changed or the periodic report is due.
func (m *Manager) Tick(now time.Time) {
	if m.closed {
		return
	}
	m.gate.expireHeld(m.log, now)
	m.retryAccepted(now)
	m.advanceMerges(now)
	m.heartbeat(now, true)
}

// Report queues a heartbeat with what the envelopes just stepped changed (a dispatcher created,
// stopped, prepared, a refusal), without the rest of a Tick: no retries, and no poll of every
// dispatcher. Every phase of a Move waits for such a report, so the runner sends one right after
// stepping schedule requests; the poll it skips cost 0.5 ms (2 ms at p99) at 3,333 dispatchers,
// in the middle of the moved span's pause. The watermarks it carries are the last poll's, which
// only ever understate a checkpoint.
func (m *Manager) Report(now time.Time) {
	if m.closed {
		return
	}
	m.heartbeat(now, false)
}

// Ready returns the envelopes to send, oldest first. They stay until Advance.
func (m *Manager) Ready() []*heartbeatpb.Envelope { return m.out.queued }

// Advance releases what the last Ready returned.
func (m *Manager) Advance() { m.out.queued = nil }

// Close closes every dispatcher; the manager refuses all input afterwards. The factory (and the
// sink it owns) belongs to the caller, who closes it after this.
func (m *Manager) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	var errs []error
	for _, journal := range []map[span.Key]*journalEntry{m.journal.current, m.journal.redo} {
		for _, j := range journal {
			closeWarming(j, m.log, "the node is closing")
		}
	}
	for _, id := range m.table.orderedIDs() {
		if err := m.table.dispatchers[id].d.Close(); err != nil {
			errs = append(errs, fmt.Errorf("dispatchermanager: close %s: %w", dispatcher.FormatID(id), err))
		}
	}
	return errors.Join(errs...)
}

package operator

import (
	"container/heap"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
)

var (
	// ErrSpanBusy: another operator already holds one of the spans (invariant I4).
	ErrSpanBusy = errors.New("operator: span busy")
	// ErrLimit: an in-flight limit (per node or overall) is reached; try again later.
	ErrLimit = errors.New("operator: in-flight limit reached")
	// ErrDuplicate: an operator with this ID is already running.
	ErrDuplicate = errors.New("operator: duplicate operator id")
)

// ControllerConfig bounds the controller. Zero fields take the defaults.
type ControllerConfig struct {
	MaxPerNode     int           // in-flight operators involving one node; default 1000
	MaxTotal       int           // in-flight operators overall; default 10000
	ResendInterval time.Duration // how often a phase's requests are resent; default 1s
	StuckAfter     time.Duration // warn about operators older than this; default 1m
	// PhaseTimeout: a phase that gets neither progress nor a refusal for this long is rolled
	// back (Aborter); default 30s. Well above a session TTL, so a lost node is seen as lost
	// first, and above any single step a node takes.
	PhaseTimeout time.Duration
	Logger       *zap.Logger
}

func (c *ControllerConfig) fill() {
	if c.MaxPerNode <= 0 {
		c.MaxPerNode = 1000
	}
	if c.MaxTotal <= 0 {
		c.MaxTotal = 10000
	}
	if c.ResendInterval <= 0 {
		c.ResendInterval = time.Second
	}
	if c.StuckAfter <= 0 {
		c.StuckAfter = time.Minute
	}
	if c.PhaseTimeout <= 0 {
		c.PhaseTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Finished is an operator that completed, with what the maintainer must apply.
type Finished struct {
	Op     Operator
	Result Result
}

// CounterKey names one counter: operators of one kind that ended with one outcome.
type CounterKey struct {
	Kind    heartbeatpb.OperatorType
	Outcome Outcome
}

// Info describes one in-flight operator for status output.
type Info struct {
	ID    heartbeatpb.OperatorID
	Kind  heartbeatpb.OperatorType
	Spans []SpanRef
	Phase string
	Nodes []string
	Age   time.Duration
}

// entry is one in-flight operator with what the controller indexes it by.
type entry struct {
	op          Operator
	id          heartbeatpb.OperatorID // cached for the heap's comparisons
	started     time.Time
	due         time.Time
	index       int // position in the due heap
	nodes       []string
	spans       []SpanRef // cached: Spans() builds string keys on every call
	warnedAt    time.Time
	dispatchers []heartbeatpb.DispatcherID
	phase       string    // the operator's phase when last looked at
	phaseSince  time.Time // when it entered that phase: the phase timeout counts from here
	aborted     bool      // Abort was called
}

// Controller keeps every in-flight operator: at most one per span and mode, within per-node and
// overall limits, resent on a throttle, with statuses routed to the owner in O(1).
type Controller struct {
	cfg          ControllerConfig
	ops          map[heartbeatpb.OperatorID]*entry
	bySpan       map[SpanRef]heartbeatpb.OperatorID
	byDispatcher map[heartbeatpb.DispatcherID]heartbeatpb.OperatorID
	perNode      map[string]int
	due          dueHeap
	finished     []Finished
	counters     map[CounterKey]uint64
	timeouts     map[heartbeatpb.OperatorType]uint64
	// madeBeforeBreak counts, by kind, successes that committed a prepared target.
	madeBeforeBreak map[heartbeatpb.OperatorType]uint64
}

// NewController returns an empty controller.
func NewController(cfg ControllerConfig) *Controller {
	cfg.fill()
	return &Controller{
		cfg:          cfg,
		ops:          make(map[heartbeatpb.OperatorID]*entry),
		bySpan:       make(map[SpanRef]heartbeatpb.OperatorID),
		byDispatcher: make(map[heartbeatpb.DispatcherID]heartbeatpb.OperatorID),
		perNode:      make(map[string]int),
		counters:     make(map[CounterKey]uint64),
		timeouts:     make(map[heartbeatpb.OperatorType]uint64),

		madeBeforeBreak: make(map[heartbeatpb.OperatorType]uint64),
	}
}

// CanAdd reports whether one more operator involving nodes fits the limits.
func (c *Controller) CanAdd(nodes ...string) bool {
	if len(c.ops) >= c.cfg.MaxTotal {
		return false
	}
	for _, n := range nodes {
		if c.perNode[n] >= c.cfg.MaxPerNode {
			return false
		}
	}
	return true
}

// Free returns how many more operators may involve node.
func (c *Controller) Free(node string) int {
	n := c.cfg.MaxPerNode - c.perNode[node]
	if t := c.cfg.MaxTotal - len(c.ops); t < n {
		n = t
	}
	if n < 0 {
		return 0
	}
	return n
}

// Add starts op and returns its first requests. It changes nothing on error.
func (c *Controller) Add(op Operator, now time.Time) ([]Outgoing, error) {
	return c.add(op, now, op.Start, true)
}

// AddRestored registers an operator rebuilt after a failover (see Restore) and returns the
// requests of the phase it reached, its Resend, instead of its first phase's. The in-flight
// limits do not apply: the operator is already in flight on the nodes, refusing it would not
// undo that. Span and dispatcher checks are as in Add.
func (c *Controller) AddRestored(op Operator, now time.Time) ([]Outgoing, error) {
	return c.add(op, now, op.Resend, false)
}

func (c *Controller) add(op Operator, now time.Time, start func(time.Time) []Outgoing, limited bool) ([]Outgoing, error) {
	id := op.ID()
	if _, ok := c.ops[id]; ok {
		return nil, fmt.Errorf("%w: %v", ErrDuplicate, id)
	}
	spans := op.Spans()
	for _, ref := range spans {
		if owner, ok := c.bySpan[ref]; ok {
			return nil, fmt.Errorf("%w: %v mode %v held by operator %v", ErrSpanBusy, ref.Span, ref.Mode, owner)
		}
	}
	dispatchers := Dispatchers(op)
	for _, d := range dispatchers {
		if owner, ok := c.byDispatcher[d]; ok {
			// Statuses are routed by dispatcher ID, so two owners would steal each other's reports.
			return nil, fmt.Errorf("%w: dispatcher %d.%d held by operator %v", ErrSpanBusy, d.Hi, d.Lo, owner)
		}
	}
	nodes := Nodes(op)
	if limited && !c.CanAdd(nodes...) {
		return nil, fmt.Errorf("%w: operator %v on nodes %v", ErrLimit, id, nodes)
	}
	e := &entry{op: op, id: id, started: now, due: now.Add(c.cfg.ResendInterval),
		nodes: nodes, spans: spans, dispatchers: dispatchers, phase: phaseOf(op), phaseSince: now}
	c.ops[id] = e
	for _, ref := range spans {
		c.bySpan[ref] = id
	}
	for _, d := range e.dispatchers {
		c.byDispatcher[d] = id
	}
	for _, n := range nodes {
		c.perNode[n]++
	}
	heap.Push(&c.due, e)
	out := start(now)
	c.settle(e, out, now)
	return out, nil
}

// settle retires e when its operator finished and otherwise pushes its resend time out when it
// just sent something.
func (c *Controller) settle(e *entry, sent []Outgoing, now time.Time) {
	if res, done := e.op.Finished(); done {
		c.retire(e, res)
		return
	}
	if p := phaseOf(e.op); p != e.phase {
		e.phase, e.phaseSince = p, now
	}
	if len(sent) > 0 {
		e.due = now.Add(c.cfg.ResendInterval)
		heap.Fix(&c.due, e.index)
	}
}

func (c *Controller) retire(e *entry, res Result) {
	id := e.op.ID()
	delete(c.ops, id)
	for _, ref := range e.spans {
		if c.bySpan[ref] == id {
			delete(c.bySpan, ref)
		}
	}
	for _, d := range e.dispatchers {
		if c.byDispatcher[d] == id {
			delete(c.byDispatcher, d)
		}
	}
	for _, n := range e.nodes {
		if c.perNode[n]--; c.perNode[n] <= 0 {
			delete(c.perNode, n)
		}
	}
	if e.index >= 0 {
		heap.Remove(&c.due, e.index)
	}
	c.counters[CounterKey{Kind: e.op.Type(), Outcome: res.Outcome}]++
	if res.MadeBeforeBreak {
		c.madeBeforeBreak[e.op.Type()]++
	}
	c.finished = append(c.finished, Finished{Op: e.op, Result: res})
}

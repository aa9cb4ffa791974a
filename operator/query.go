package operator

import (
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// What the controller tells about its operators: lookups for the maintainer, finished operators
// to apply, counters and the in-flight list for status output.

// Owner returns the operator that names dispatcher id, if any.
func (c *Controller) Owner(id heartbeatpb.DispatcherID) (Operator, bool) {
	opID, ok := c.byDispatcher[id]
	if !ok {
		return nil, false
	}
	return c.ops[opID].op, true
}

// Get returns the running operator with id.
func (c *Controller) Get(id heartbeatpb.OperatorID) (Operator, bool) {
	e, ok := c.ops[id]
	if !ok {
		return nil, false
	}
	return e.op, true
}

// BySpan returns the operator holding ref.
func (c *Controller) BySpan(ref SpanRef) (heartbeatpb.OperatorID, bool) {
	id, ok := c.bySpan[ref]
	return id, ok
}

// Len returns the number of in-flight operators.
func (c *Controller) Len() int { return len(c.ops) }

// InFlight returns the number of in-flight operators involving node.
func (c *Controller) InFlight(node string) int { return c.perNode[node] }

// TakeFinished returns the operators finished since the last call, in finishing order.
func (c *Controller) TakeFinished() []Finished {
	f := c.finished
	c.finished = nil
	return f
}

// Counters returns how many operators ended, by kind and outcome.
func (c *Controller) Counters() map[CounterKey]uint64 {
	out := make(map[CounterKey]uint64, len(c.counters))
	for k, v := range c.counters {
		out[k] = v
	}
	return out
}

// MadeBeforeBreak returns how many operators succeeded make-before-break, by kind.
func (c *Controller) MadeBeforeBreak() map[heartbeatpb.OperatorType]uint64 {
	out := make(map[heartbeatpb.OperatorType]uint64, len(c.madeBeforeBreak))
	for k, v := range c.madeBeforeBreak {
		out[k] = v
	}
	return out
}

// List describes every in-flight operator, by ID.
func (c *Controller) List(now time.Time) []Info {
	es := c.sorted(func(*entry) bool { return true })
	out := make([]Info, 0, len(es))
	for _, e := range es {
		out = append(out, Info{ID: e.op.ID(), Kind: e.op.Type(), Spans: e.spans, Phase: phaseOf(e.op),
			Nodes: e.nodes, Age: now.Sub(e.started)})
	}
	return out
}

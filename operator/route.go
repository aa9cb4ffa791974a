package operator

import (
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// What the controller routes to its operators: reports and refusals to the one operator they
// name, node and table removals to every operator they concern, in operator ID order.

// OnStatus routes one reported status to the operator that names its dispatcher. It reports
// whether some operator owned the dispatcher.
func (c *Controller) OnStatus(node string, st *heartbeatpb.DispatcherStatus, now time.Time) ([]Outgoing, bool) {
	if st == nil {
		return nil, false
	}
	opID, ok := c.byDispatcher[st.Id]
	if !ok {
		return nil, false
	}
	e := c.ops[opID]
	out := e.op.OnStatus(node, st, now)
	c.settle(e, out, now)
	return out, true
}

// OnRejection routes a node's refusal to the operator it names.
func (c *Controller) OnRejection(node string, rej *heartbeatpb.RequestRejection, now time.Time) []Outgoing {
	if rej == nil {
		return nil
	}
	e, ok := c.ops[rej.OperatorId]
	if !ok {
		return nil
	}
	h, ok := e.op.(RejectionHandler)
	if !ok {
		return nil
	}
	c.cfg.Logger.Warn("request rejected", zap.String("node", node),
		zap.Stringer("operator", &rej.OperatorId), zap.String("reason", rej.Reason))
	out := h.OnRejected(node, rej, now)
	c.settle(e, out, now)
	return out
}

// OnNodeRemoved tells every operator involving node that it is gone.
func (c *Controller) OnNodeRemoved(node string, now time.Time) []Outgoing {
	if c.perNode[node] == 0 {
		return nil
	}
	var out []Outgoing
	for _, e := range c.sorted(func(e *entry) bool { return contains(e.nodes, node) }) {
		sent := e.op.OnNodeRemoved(node, now)
		out = append(out, sent...)
		c.settle(e, sent, now)
	}
	return out
}

// OnTableRemoved tells every operator that the table left the changefeed.
func (c *Controller) OnTableRemoved(table int64, now time.Time) []Outgoing {
	var out []Outgoing
	for _, e := range c.sorted(func(e *entry) bool {
		for _, r := range e.spans {
			if r.Span.Table == table {
				return true
			}
		}
		return false
	}) {
		sent := e.op.OnTableRemoved(table, now)
		out = append(out, sent...)
		c.settle(e, sent, now)
	}
	return out
}

// sorted returns the entries keep accepts, by operator ID, for a deterministic order.
func (c *Controller) sorted(keep func(*entry) bool) []*entry {
	var es []*entry
	for _, e := range c.ops {
		if keep(e) {
			es = append(es, e)
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].op.ID().Less(es[j].op.ID()) })
	return es
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

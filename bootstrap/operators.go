package bootstrap

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

// journaled is one operator as the journals of all nodes show it.
type journaled struct {
	desc  *heartbeatpb.OperatorDescriptor
	nodes []string // nodes whose journal holds it, sorted (nodes are visited in order)
	// createTs: the start ts of a journaled create half; for kinds whose creates start from the
	// source's final checkpoint it proves where the source stopped.
	createTs  uint64
	hasCreate bool
	merge     *heartbeatpb.InFlightMerge
	bad       string
}

func (c *collector) entry(node string, d *heartbeatpb.OperatorDescriptor) *journaled {
	j := c.ops[d.Id]
	if j == nil {
		j = &journaled{desc: d}
		c.ops[d.Id] = j
	} else if !j.desc.Equal(d) && j.bad == "" {
		j.bad = fmt.Sprintf("journal entries on %s and %s carry different descriptors", j.nodes[0], node)
	}
	if n := len(j.nodes); n == 0 || j.nodes[n-1] != node {
		j.nodes = append(j.nodes, node)
	}
	for _, ps := range [][]heartbeatpb.SpanPlacement{d.Sources, d.Targets} {
		for _, p := range ps {
			c.wanted[p.DispatcherId] = append(c.wanted[p.DispatcherId], p.NodeId)
		}
	}
	return j
}

// journal records one schedule request of a node's current or redo map.
func (c *collector) journal(node string, d *heartbeatpb.OperatorDescriptor, r *heartbeatpb.ScheduleDispatcherRequest) {
	j := c.entry(node, d)
	if r.Action == heartbeatpb.ActionCreate && operator.StartsFromSource(d.Kind) {
		j.createTs, j.hasCreate = r.Config.StartTs, true
	}
}

// journalMerge records one entry of a node's merge map.
func (c *collector) journalMerge(node string, m *heartbeatpb.InFlightMerge) {
	j := c.entry(node, &m.Request.Operator)
	j.merge = m
}

// restoreOperators rebuilds every journaled operator, newest first, and lets each claim its spans.
func (c *collector) restoreOperators(now time.Time) {
	ids := make([]heartbeatpb.OperatorID, 0, len(c.ops))
	for id := range c.ops {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[j].Less(ids[i]) })
	c.stoppedBy = stoppedByGroup(c.stopped)
	for _, id := range ids {
		c.restoreOne(c.ops[id], now)
	}
}

func (c *collector) restoreOne(j *journaled, now time.Time) {
	d := j.desc
	if j.bad != "" {
		c.drop(j, UnresolvedBadOperator, j.bad)
		return
	}
	if reason := c.outsideChangefeed(d); reason != "" {
		c.drop(j, UnresolvedTableRemoved, reason)
		return
	}
	op, err := operator.Restore(operator.RestoreInput{
		Desc: d, Floor: c.plan.Checkpoint, Reports: c.reportsFor(j), Lost: c.lost(d),
	}, now)
	if err != nil {
		detail := err.Error()
		if errors.Is(err, operator.ErrUnsupported) {
			detail = "not resumed: " + detail
		}
		c.drop(j, UnresolvedBadOperator, detail)
		return
	}
	res, done := op.Finished()
	if done && op.Type() == heartbeatpb.OpRemove {
		// A finished Remove binds nothing, and the span it left may be served by a dispatcher
		// kept elsewhere (a removed stray). Its Stopped record already lifts the resume ts of a
		// piece it covers, so it claims nothing and is only acknowledged.
		c.complete(j, op, operator.Result{Outcome: res.Outcome})
		return
	}
	// A finished operator's bindings are working dispatchers: they compete for their spans like
	// any other. What it left absent and what a running one holds are claims.
	var claims []groupSpan
	if done {
		for _, a := range res.Absent {
			claims = append(claims, groupSpan{a.Mode, a.Span})
		}
	} else {
		for _, ref := range op.Spans() {
			claims = append(claims, groupSpan{ref.Mode, ref.Span.Span()})
		}
	}
	// A working dispatcher is an observed fact, a claim only an intent: one the operator does not
	// name on a claimed span means the operator was overtaken (it finished, its acknowledgement
	// got lost, and the span moved on; tests/sim/testdata/stale_journal.txt).
	if w, ok := c.foreignWorking(d, claims); ok {
		c.drop(j, UnresolvedOverlap, fmt.Sprintf("not resumed: working dispatcher %d.%d on %s serves %s",
			w.Dispatcher.Hi, w.Dispatcher.Lo, w.Node, span.String(w.Span)))
		return
	}
	if other := c.claimed(claims); other != "" {
		c.drop(j, UnresolvedOverlap, "not resumed: its spans overlap "+other)
		return
	}
	for _, cl := range claims {
		g := groupKey{cl.span.TableId, cl.mode}
		c.claims[g] = append(c.claims[g], cl.span)
		c.touch(cl.span.TableId, cl.mode)
	}
	if done {
		c.complete(j, op, res)
		return
	}
	c.resume(op)
}

// touch marks the group of table in mode as holding a claim or an owned dispatcher.
func (c *collector) touch(table int64, mode heartbeatpb.Mode) {
	if g, ok := c.index.group(table, mode); ok {
		c.touched[g] = true
	}
}

type groupSpan struct {
	mode heartbeatpb.Mode
	span heartbeatpb.TableSpan
}

// claimed names an existing claim that one of claims overlaps, or "". Claims are few (one set per
// in-flight operator), so a scan of the group is enough.
func (c *collector) claimed(claims []groupSpan) string {
	for _, cl := range claims {
		for _, s := range c.claims[groupKey{cl.span.TableId, cl.mode}] {
			if span.Overlap(s, cl.span) {
				return "a newer operator's span " + span.String(s)
			}
		}
	}
	return ""
}

// outsideChangefeed says why an operator's spans are not all part of the changefeed, or "".
func (c *collector) outsideChangefeed(d *heartbeatpb.OperatorDescriptor) string {
	if d.Mode == heartbeatpb.ModeRedo && !c.cfg.Redo {
		return "redo operator while redo is off"
	}
	for _, ps := range [][]heartbeatpb.SpanPlacement{d.Sources, d.Targets} {
		for _, p := range ps {
			if !c.index.tables.has(p.Span.TableId) {
				return fmt.Sprintf("table %d is not in the changefeed", p.Span.TableId)
			}
		}
	}
	return ""
}

// reportsFor returns the statuses of the operator's dispatchers, sources first, each from the
// node the descriptor names. A source nobody reports is proven stopped at the start ts of a
// journaled create half when the kind starts its creates from the source's final checkpoint.
func (c *collector) reportsFor(j *journaled) []operator.Reported {
	d := j.desc
	var out []operator.Reported
	for _, p := range d.Sources {
		if st, ok := c.reports[reportKey{p.NodeId, p.DispatcherId}]; ok && span.Equal(st.Span, p.Span) {
			out = append(out, operator.Reported{Node: p.NodeId, Status: *st})
		} else if j.hasCreate {
			out = append(out, operator.Reported{Node: p.NodeId, Status: heartbeatpb.DispatcherStatus{
				Id: p.DispatcherId, Span: p.Span, Mode: d.Mode, State: heartbeatpb.StateStopped, CheckpointTs: j.createTs,
			}})
		}
	}
	for _, p := range d.Targets {
		if st, ok := c.reports[reportKey{p.NodeId, p.DispatcherId}]; ok && span.Equal(st.Span, p.Span) {
			out = append(out, operator.Reported{Node: p.NodeId, Status: *st})
		}
	}
	return out
}

// lost lists the descriptor's nodes that did not answer the bootstrap, sorted.
func (c *collector) lost(d *heartbeatpb.OperatorDescriptor) []string {
	var out []string
	for _, n := range descNodes(d) {
		if !c.live[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func descNodes(d *heartbeatpb.OperatorDescriptor) []string {
	seen := map[string]bool{}
	var out []string
	for _, ps := range [][]heartbeatpb.SpanPlacement{d.Sources, d.Targets} {
		for _, p := range ps {
			if !seen[p.NodeId] {
				seen[p.NodeId] = true
				out = append(out, p.NodeId)
			}
		}
	}
	return out
}

// drop lists an operator that is not resumed and acknowledges it on every node that holds it.
func (c *collector) drop(j *journaled, kind UnresolvedKind, detail string) {
	d := j.desc
	u := Unresolved{Kind: kind, Node: j.nodes[0], Operator: d.Id, Mode: d.Mode,
		Detail: fmt.Sprintf("%v: %s; acknowledged", d.Kind, detail)}
	if ps := append(append([]heartbeatpb.SpanPlacement(nil), d.Sources...), d.Targets...); len(ps) > 0 {
		u.Span, u.Dispatcher = ps[0].Span, ps[0].DispatcherId
	}
	c.plan.Unresolved = append(c.plan.Unresolved, u)
	c.ack(j)
}

func (c *collector) ack(j *journaled) {
	for _, n := range j.nodes {
		c.plan.Acks = append(c.plan.Acks, Ack{Node: n, Operator: j.desc.Id})
	}
}

// complete folds a finished operator's absent spans into the plan (its bindings are working
// dispatchers, placed like the others) and acknowledges it.
func (c *collector) complete(j *journaled, op operator.Operator, res operator.Result) {
	for _, a := range res.Absent {
		c.plan.Absent = append(c.plan.Absent, Absent{Span: a.Span, Mode: a.Mode, ResumeTs: a.Checkpoint})
	}
	c.plan.Completed = append(c.plan.Completed, Completed{ID: op.ID(), Kind: op.Type(), Outcome: res.Outcome})
	c.ack(j)
}

// resume keeps a running operator with the spans it holds; every working dispatcher it names
// on the node it names is its own, not a candidate for placement.
func (c *collector) resume(op operator.Operator) {
	d := op.Descriptor()
	var named []Placement
	for _, ps := range [][]heartbeatpb.SpanPlacement{d.Sources, d.Targets} {
		for _, p := range ps {
			k := reportKey{p.NodeId, p.DispatcherId}
			if st, ok := c.reports[k]; ok && st.State == heartbeatpb.StateWorking && span.Equal(st.Span, p.Span) {
				c.owned[p.DispatcherId] = append(c.owned[p.DispatcherId], p.NodeId)
				c.touch(st.Span.TableId, st.Mode) // the group index.add put it in
				named = append(named, Placement{Span: st.Span, Mode: st.Mode, Node: p.NodeId,
					Dispatcher: p.DispatcherId, Checkpoint: st.CheckpointTs})
			}
		}
	}
	r := Resumed{Op: op}
	for _, s := range heldSpans(d) {
		h := Held{Span: s, Mode: d.Mode}
		if p, ok := findPlacement(named, s); ok {
			h.Node, h.Dispatcher, h.Checkpoint, h.Bound = p.Node, p.Dispatcher, p.Checkpoint, true
		} else {
			h.Node, h.Dispatcher = placingNode(d, s)
			h.Checkpoint = resumeTs(c.stoppedBy[groupKey{s.TableId, d.Mode}], s, c.plan.Checkpoint)
		}
		r.Held = append(r.Held, h)
	}
	c.plan.Resumed = append(c.plan.Resumed, r)
}

func findPlacement(ps []Placement, s heartbeatpb.TableSpan) (Placement, bool) {
	for _, p := range ps {
		if span.Equal(p.Span, s) {
			return p, true
		}
	}
	return Placement{}, false
}

// placingNode is where an operator is putting s: the target of that span, else its source.
func placingNode(d *heartbeatpb.OperatorDescriptor, s heartbeatpb.TableSpan) (string, heartbeatpb.DispatcherID) {
	for _, ps := range [][]heartbeatpb.SpanPlacement{d.Targets, d.Sources} {
		for _, p := range ps {
			if span.Equal(p.Span, s) {
				return p.NodeId, p.DispatcherId
			}
		}
	}
	if nodes := descNodes(d); len(nodes) > 0 {
		return nodes[0], heartbeatpb.DispatcherID{}
	}
	return "", heartbeatpb.DispatcherID{}
}

// heldSpans are the span DB records a running operator holds: what existed before it (its
// sources: a Move's or Remove's span, a Split's parent, a Merge's pieces), or, for an Add, the
// span it places. Its result replaces them.
func heldSpans(d *heartbeatpb.OperatorDescriptor) []heartbeatpb.TableSpan {
	ps := d.Sources
	if len(ps) == 0 {
		ps = d.Targets
	}
	out := make([]heartbeatpb.TableSpan, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Span)
	}
	return out
}

// foreignWorking returns a working dispatcher that overlaps one of claims and that d does not
// name on the node it names.
func (c *collector) foreignWorking(d *heartbeatpb.OperatorDescriptor, claims []groupSpan) (Placement, bool) {
	named := func(p Placement) bool {
		for _, ps := range [][]heartbeatpb.SpanPlacement{d.Sources, d.Targets} {
			for _, x := range ps {
				if x.NodeId == p.Node && x.DispatcherId == p.Dispatcher {
					return true
				}
			}
		}
		return false
	}
	for _, cl := range claims {
		g, ok := c.index.group(cl.span.TableId, cl.mode)
		if !ok {
			continue // outsideChangefeed dropped such an operator before
		}
		if w, ok := c.index.find(g, cl.span, named); ok {
			return w, true
		}
	}
	return Placement{}, false
}

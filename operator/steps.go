package operator

import "github.com/tidemark/tidemark/heartbeatpb"

// The two steps a Move and a Split are built from (handover.go puts them in sequence). Each step
// only records what the reports of its own dispatchers prove; deciding what to do next is the
// sequence's business.

// stopStep stops the source dispatcher and learns its final checkpoint from the Stopped (or
// Removed) report.
type stopStep struct {
	src        heartbeatpb.SpanPlacement
	checkpoint uint64 // last checkpoint seen from the source; final once it stopped
}

// request is the source's remove.
func (s *stopStep) request(d *heartbeatpb.OperatorDescriptor) Outgoing {
	return Outgoing{Node: s.src.NodeId, Schedule: request(d, heartbeatpb.ActionRemove, s.src.DispatcherId, s.src.Span, 0)}
}

// names reports whether node and dispatcher are the source's.
func (s *stopStep) names(node string, id heartbeatpb.DispatcherID) bool {
	return node == s.src.NodeId && id == s.src.DispatcherId
}

// observe takes a status of the source: it raises the checkpoint and reports whether the
// source no longer processes data.
func (s *stopStep) observe(st *heartbeatpb.DispatcherStatus) bool {
	s.checkpoint = maxTs(s.checkpoint, st.CheckpointTs)
	return gone(st.State)
}

// targetState is how far the create of one target got.
type targetState uint8

const (
	targetPending    targetState = iota // create sent, not seen working yet
	targetWorking                       // reported Working: bound at the end
	targetFailed                        // lost, refused or gone: absent at the end
	targetTakingBack                    // its create is taken back with a Remove of its own
	targetPrepared                      // make-before-break: prepared, waiting for the source's stop
)

type target struct {
	p     heartbeatpb.SpanPlacement
	state targetState
	cp    uint64 // checkpoint it reported (or the source's final one when it failed without)
}

// createStep creates every target from the source's final checkpoint, and takes creates back.
type createStep struct {
	targets []target
}

func newCreateStep(ps []heartbeatpb.SpanPlacement) createStep {
	c := createStep{targets: make([]target, len(ps))}
	for i, p := range ps {
		c.targets[i] = target{p: p}
	}
	return c
}

// requests asks for every target that is waited for: a create from ts for the pending ones, a
// remove for the ones being taken back.
func (c *createStep) requests(d *heartbeatpb.OperatorDescriptor, ts uint64) []Outgoing {
	var out []Outgoing
	for _, t := range c.targets {
		if act, ok := t.action(); ok {
			out = append(out, Outgoing{Node: t.p.NodeId, Schedule: request(d, act, t.p.DispatcherId, t.p.Span, ts)})
		}
	}
	return out
}

// action is the request a waited-for target needs.
func (t *target) action() (heartbeatpb.ScheduleAction, bool) {
	switch t.state {
	case targetPending:
		return heartbeatpb.ActionCreate, true
	case targetTakingBack:
		return heartbeatpb.ActionRemove, true
	}
	return 0, false
}

// waited reports whether the target still needs an answer.
func (t *target) waited() bool { _, ok := t.action(); return ok }

// find returns the index of the target dispatcher id on node, or -1.
func (c *createStep) find(node string, id heartbeatpb.DispatcherID) int {
	for i := range c.targets {
		if c.targets[i].p.NodeId == node && c.targets[i].p.DispatcherId == id {
			return i
		}
	}
	return -1
}

// waiting reports whether some target still needs an answer.
func (c *createStep) waiting() bool {
	for i := range c.targets {
		if c.targets[i].waited() {
			return true
		}
	}
	return false
}

// takeBack turns every target in one of the states from into a take-back and returns the
// removes that asks for, from ts.
func (c *createStep) takeBack(d *heartbeatpb.OperatorDescriptor, ts uint64, from ...targetState) []Outgoing {
	var out []Outgoing
	for i := range c.targets {
		t := &c.targets[i]
		for _, s := range from {
			if t.state == s {
				t.state = targetTakingBack
				out = append(out, Outgoing{Node: t.p.NodeId,
					Schedule: request(d, heartbeatpb.ActionRemove, t.p.DispatcherId, t.p.Span, ts)})
				break
			}
		}
	}
	return out
}

// nodeLost fails every target on node that has not failed yet, from ts.
func (c *createStep) nodeLost(node string, ts uint64) {
	for i := range c.targets {
		if t := &c.targets[i]; t.p.NodeId == node && t.state != targetFailed {
			t.state, t.cp = targetFailed, ts
		}
	}
}

// result adds every target to r: the working ones bound, the failed ones absent from their
// checkpoint or final (the source's final checkpoint), whichever is higher; a failed target
// makes the outcome aborted.
func (c *createStep) result(r *Result, mode heartbeatpb.Mode, final uint64) {
	for _, t := range c.targets {
		if t.state == targetWorking {
			r.Bind = append(r.Bind, Binding{Span: t.p.Span, Mode: mode, Node: t.p.NodeId,
				Dispatcher: t.p.DispatcherId, Checkpoint: t.cp})
			continue
		}
		r.Outcome = OutcomeAborted
		r.Absent = append(r.Absent, AbsentSpan{Span: t.p.Span, Mode: mode, Checkpoint: maxTs(t.cp, final)})
	}
}

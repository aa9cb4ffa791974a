package operator

import (
	"fmt"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// addState is the lifecycle of an Add.
//
//	   Start
//	     |
//	     v
//	+----------+  dest reports Working          +----------+
//	| creating |------------------------------->| done     |
//	+----------+                                +----------+
//	  |      |  dest lost / rejected / dest reports Stopped   ^
//	  |      +------------------------------------------------+ (aborted: span absent)
//	  | table removed
//	  v
//	+----------+  dest reports Stopped/Removed, rejects, or is lost
//	| canceling|-------------------------------------------> done (table removed)
//	+----------+
//	  ^ phase timeout (creating got no answer): the same canceling, then done (aborted: span
//	    absent @ start ts, or @ the dest's final ts when it had worked)
type addState int

const (
	addCreating addState = iota
	addCanceling
	addDone
)

var addStateNames = [...]string{"creating", "canceling", "done"}

func (s addState) String() string { return addStateNames[s] }

// addTransitions is every valid state change of an Add; anything else is a bug.
var addTransitions = map[addState][]addState{
	addCreating:  {addDone, addCanceling},
	addCanceling: {addDone},
}

// Add creates one dispatcher for a span that has none, on dest, starting from startTs.
type Add struct {
	desc    heartbeatpb.OperatorDescriptor
	span    heartbeatpb.TableSpan
	dest    string
	id      heartbeatpb.DispatcherID
	startTs uint64
	// aborted: canceling because the create timed out, not because the table left.
	aborted bool
	state   addState
	result  Result
}

// NewAdd returns an Add of s (mode) onto dest as dispatcher did, starting from startTs.
func NewAdd(id heartbeatpb.OperatorID, s heartbeatpb.TableSpan, mode heartbeatpb.Mode, dest string,
	did heartbeatpb.DispatcherID, startTs uint64, now time.Time) (*Add, error) {
	if err := validateSpan("add", s); err != nil {
		return nil, err
	}
	if dest == "" {
		return nil, fmt.Errorf("%w: add of %v: empty destination node", ErrInvalid, RefOf(s, mode).Span)
	}
	return &Add{
		desc: heartbeatpb.OperatorDescriptor{
			Id: id, Kind: heartbeatpb.OpAdd, Mode: mode,
			Targets:   []heartbeatpb.SpanPlacement{placement(s, dest, did)},
			StartTs:   startTs,
			CreatedMs: now.UnixMilli(),
		},
		span: s, dest: dest, id: did, startTs: startTs,
	}, nil
}

func (a *Add) ID() heartbeatpb.OperatorID                  { return a.desc.Id }
func (a *Add) Type() heartbeatpb.OperatorType              { return heartbeatpb.OpAdd }
func (a *Add) Descriptor() *heartbeatpb.OperatorDescriptor { return &a.desc }
func (a *Add) Spans() []SpanRef                            { return []SpanRef{RefOf(a.span, a.desc.Mode)} }
func (a *Add) Phase() string                               { return a.state.String() }

func (a *Add) to(next addState) {
	mustTransition("add", a.state, next, addTransitions)
	a.state = next
}

// Start sends the create request.
func (a *Add) Start(now time.Time) []Outgoing { return a.Resend(now) }

// Resend repeats the request of the current phase; a node treats repeats as no-ops.
func (a *Add) Resend(time.Time) []Outgoing {
	switch a.state {
	case addCreating:
		return []Outgoing{{Node: a.dest, Schedule: request(&a.desc, heartbeatpb.ActionCreate, a.id, a.span, a.startTs)}}
	case addCanceling:
		return []Outgoing{{Node: a.dest, Schedule: request(&a.desc, heartbeatpb.ActionRemove, a.id, a.span, a.startTs)}}
	}
	return nil
}

// OnStatus finishes the phase the reported status satisfies.
func (a *Add) OnStatus(node string, st *heartbeatpb.DispatcherStatus, now time.Time) []Outgoing {
	if !matches(node, a.dest, st, a.id) {
		return nil
	}
	switch a.state {
	case addCreating:
		switch {
		case st.State == heartbeatpb.StateWorking:
			a.finish(Result{Outcome: OutcomeSucceeded, Bind: []Binding{{
				Span: a.span, Mode: a.desc.Mode, Node: a.dest, Dispatcher: a.id,
				Checkpoint: maxTs(st.CheckpointTs, a.startTs),
			}}})
		case gone(st.State):
			// Stopped by someone else: it processed up to its final checkpoint, resume there.
			a.abort(maxTs(st.CheckpointTs, a.startTs))
		}
	case addCanceling:
		if gone(st.State) {
			a.canceled(st.CheckpointTs)
		}
	}
	return nil
}

// OnRejected: a refused create leaves the span absent; a refused cancel means there is nothing
// to remove (requests are ordered, so the create will not arrive after it).
func (a *Add) OnRejected(node string, rej *heartbeatpb.RequestRejection, now time.Time) []Outgoing {
	if rej == nil || node != a.dest || rej.OperatorId != a.desc.Id {
		return nil
	}
	a.destGone()
	return nil
}

// OnNodeRemoved: losing dest loses whatever was created there.
func (a *Add) OnNodeRemoved(node string, now time.Time) []Outgoing {
	if node != a.dest {
		return nil
	}
	a.destGone()
	return nil
}

// destGone ends the Add when dest holds nothing of it: refused, or lost with the node.
func (a *Add) destGone() {
	switch a.state {
	case addCreating:
		a.abort(a.startTs)
	case addCanceling:
		a.canceled(0)
	}
}

// canceled ends a cancel: nothing of the Add is left on dest; final is the dest's final ts, if
// it had worked.
func (a *Add) canceled(final uint64) {
	if a.aborted {
		a.abort(maxTs(final, a.startTs))
		return
	}
	a.finish(Result{Outcome: OutcomeTableRemoved})
}

// Abort takes back a create that got no answer: the dest may yet have made the dispatcher.
func (a *Add) Abort(now time.Time) []Outgoing {
	if a.state != addCreating {
		return nil
	}
	a.aborted = true
	a.to(addCanceling)
	return a.Resend(now)
}

// OnTableRemoved cancels a create that may already have happened.
func (a *Add) OnTableRemoved(table int64, now time.Time) []Outgoing {
	if table != a.span.TableId {
		return nil
	}
	if a.state == addCanceling {
		a.aborted = false // whatever the cancel finds, nothing is left absent
		return nil
	}
	if a.state != addCreating {
		return nil
	}
	a.to(addCanceling)
	return a.Resend(now)
}

func (a *Add) abort(resume uint64) {
	a.finish(Result{Outcome: OutcomeAborted, Absent: []AbsentSpan{{Span: a.span, Mode: a.desc.Mode, Checkpoint: resume}}})
}

func (a *Add) finish(r Result) {
	a.to(addDone)
	a.result = r
}

// Finished returns the result once the Add is done.
func (a *Add) Finished() (Result, bool) { return a.result, a.state == addDone }

package operator

import (
	"fmt"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// moveState is the lifecycle of a Move.
//
//	   Start
//	     |
//	     v
//	+----------+ origin Stopped (final ts) +----------+ dest Working   +------+
//	| stopping |-------------------------->| creating |--------------->| done | bind dest
//	+----------+                           +----------+                +------+
//	  |  |  origin lost -> done, absent @ last known ts   | dest lost / rejects / Stopped
//	  |  |                                                +--> done, absent @ final ts
//	  |  | dest lost                                      | table removed
//	  |  v                                                v
//	  | +--------------+ origin Stopped / lost   +-----------+ dest Stopped/Removed/lost/rejects
//	  | | stopping-only|--> done, absent         | canceling |--> done (table removed)
//	  | +--------------+                         +-----------+
//	  | table removed: keep stopping, then done (table removed) without creating
//	  | phase timeout: stopping ends as after a refusal (span left on origin); creating goes
//	  | to canceling, which then ends with the span absent @ final ts
//	  | dest reports Working while stopping: the origin had stopped (the dest is only created
//	  | after that), so on to creating, done at once (canceling if the table left)
type moveState int

const (
	moveStopping moveState = iota
	moveStoppingOnly
	moveCreating
	moveCanceling
	moveDone
)

var moveStateNames = [...]string{"stopping", "stopping-only", "creating", "canceling", "done"}

func (s moveState) String() string { return moveStateNames[s] }

var moveTransitions = map[moveState][]moveState{
	moveStopping:     {moveCreating, moveStoppingOnly, moveDone},
	moveStoppingOnly: {moveDone},
	moveCreating:     {moveDone, moveCanceling},
	moveCanceling:    {moveDone},
}

// Move hands one span from origin to dest: it stops the origin dispatcher, reads its final
// checkpoint from the Stopped status, then creates the dest dispatcher from exactly that ts.
type Move struct {
	desc         heartbeatpb.OperatorDescriptor
	span         heartbeatpb.TableSpan
	origin, dest string
	from, to     heartbeatpb.DispatcherID
	checkpoint   uint64 // last checkpoint seen from origin; final once it stopped
	tableRemoved bool
	state        moveState
	result       Result
}

// NewMove returns a Move of s (mode) from dispatcher from on origin to dispatcher to on dest.
func NewMove(id heartbeatpb.OperatorID, s heartbeatpb.TableSpan, mode heartbeatpb.Mode,
	origin string, from heartbeatpb.DispatcherID, dest string, to heartbeatpb.DispatcherID,
	checkpoint uint64, now time.Time) (*Move, error) {
	if err := validateSpan("move", s); err != nil {
		return nil, err
	}
	if origin == "" || dest == "" || origin == dest {
		return nil, fmt.Errorf("%w: move of %v: need two distinct nodes, got %q and %q",
			ErrInvalid, RefOf(s, mode).Span, origin, dest)
	}
	if from == to {
		return nil, fmt.Errorf("%w: move of %v: origin and destination dispatcher IDs are equal",
			ErrInvalid, RefOf(s, mode).Span)
	}
	return &Move{
		desc: heartbeatpb.OperatorDescriptor{
			Id: id, Kind: heartbeatpb.OpMove, Mode: mode,
			Sources:   []heartbeatpb.SpanPlacement{placement(s, origin, from)},
			Targets:   []heartbeatpb.SpanPlacement{placement(s, dest, to)},
			CreatedMs: now.UnixMilli(),
		},
		span: s, origin: origin, dest: dest, from: from, to: to, checkpoint: checkpoint,
	}, nil
}

func (m *Move) ID() heartbeatpb.OperatorID                  { return m.desc.Id }
func (m *Move) Type() heartbeatpb.OperatorType              { return heartbeatpb.OpMove }
func (m *Move) Descriptor() *heartbeatpb.OperatorDescriptor { return &m.desc }
func (m *Move) Spans() []SpanRef                            { return []SpanRef{RefOf(m.span, m.desc.Mode)} }
func (m *Move) Phase() string                               { return m.state.String() }

func (m *Move) moveTo(next moveState) {
	mustTransition("move", m.state, next, moveTransitions)
	m.state = next
}

// Start sends the remove half to the origin.
func (m *Move) Start(now time.Time) []Outgoing { return m.Resend(now) }

// Resend repeats the request of the current phase.
func (m *Move) Resend(time.Time) []Outgoing {
	switch m.state {
	case moveStopping, moveStoppingOnly:
		return []Outgoing{{Node: m.origin, Schedule: request(&m.desc, heartbeatpb.ActionRemove, m.from, m.span, 0)}}
	case moveCreating:
		return []Outgoing{{Node: m.dest, Schedule: request(&m.desc, heartbeatpb.ActionCreate, m.to, m.span, m.checkpoint)}}
	case moveCanceling:
		return []Outgoing{{Node: m.dest, Schedule: request(&m.desc, heartbeatpb.ActionRemove, m.to, m.span, m.checkpoint)}}
	}
	return nil
}

// OnStatus advances on the origin's Stopped report and the dest's Working report.
func (m *Move) OnStatus(node string, st *heartbeatpb.DispatcherStatus, now time.Time) []Outgoing {
	switch {
	case matches(node, m.origin, st, m.from):
		return m.onOrigin(st, now)
	case matches(node, m.dest, st, m.to):
		return m.onDest(st, now)
	}
	return nil
}

func (m *Move) onOrigin(st *heartbeatpb.DispatcherStatus, now time.Time) []Outgoing {
	if m.state != moveStopping && m.state != moveStoppingOnly {
		return nil // late or duplicate: the final checkpoint is already fixed
	}
	m.checkpoint = maxTs(m.checkpoint, st.CheckpointTs)
	if !gone(st.State) {
		return nil
	}
	if m.state == moveStoppingOnly || m.tableRemoved {
		m.finishAbsent()
		return nil
	}
	m.moveTo(moveCreating)
	return m.Resend(now)
}

func (m *Move) onDest(st *heartbeatpb.DispatcherStatus, now time.Time) []Outgoing {
	switch m.state {
	case moveStopping:
		// The dest is created only after the origin reported Stopped, and its ID is this Move's
		// alone: a working dest proves the origin stopped. A restored Move whose dest entry was
		// already acknowledged (so no journaled create says so) learns it here; waiting for an
		// origin that no longer answers left the span absent under the working dest
		// (tests/sim/testdata/dest_before_stop.txt).
		if st.State != heartbeatpb.StateWorking {
			return nil
		}
		m.moveTo(moveCreating)
		if m.tableRemoved {
			m.moveTo(moveCanceling)
			return m.Resend(now)
		}
		return m.onDest(st, now)
	case moveCreating:
		if st.State == heartbeatpb.StateWorking {
			m.moveTo(moveDone)
			m.result = Result{Outcome: OutcomeSucceeded, Bind: []Binding{{
				Span: m.span, Mode: m.desc.Mode, Node: m.dest, Dispatcher: m.to,
				Checkpoint: maxTs(st.CheckpointTs, m.checkpoint),
			}}}
		} else if gone(st.State) {
			m.checkpoint = maxTs(m.checkpoint, st.CheckpointTs)
			m.finishAbsent()
		}
	case moveCanceling:
		if gone(st.State) {
			m.finishAbsent()
		}
	}
	return nil
}

// OnRejected: a node refuses a remove only while the dispatcher is busy (another operator's
// journal entry for its span, an in-flight merge); an unknown dispatcher is answered Removed,
// not refused. So a refused remove means the origin still works: the Move ends leaving the span
// as it was (taking it for gone put a second dispatcher on it: tests/sim/testdata/
// move_remove_refused.txt). A refused create leaves the span absent at the final checkpoint.
func (m *Move) OnRejected(node string, rej *heartbeatpb.RequestRejection, now time.Time) []Outgoing {
	if rej == nil || rej.OperatorId != m.desc.Id {
		return nil
	}
	switch {
	case node == m.origin && (m.state == moveStopping || m.state == moveStoppingOnly):
		m.moveTo(moveDone)
		m.result = Result{Outcome: OutcomeAborted}
		if m.tableRemoved {
			m.result = Result{Outcome: OutcomeTableRemoved}
		}
	case node == m.dest && (m.state == moveCreating || m.state == moveCanceling):
		m.finishAbsent()
	}
	return nil
}

// Abort rolls back a phase that got no answer: an unanswered stop ends as a refused one (the
// origin keeps the span); an unanswered create is taken back from dest before the span is left
// absent at the origin's final checkpoint.
func (m *Move) Abort(now time.Time) []Outgoing {
	switch m.state {
	case moveStopping, moveStoppingOnly:
		return m.OnRejected(m.origin, &heartbeatpb.RequestRejection{OperatorId: m.desc.Id, DispatcherId: m.from}, now)
	case moveCreating:
		m.moveTo(moveCanceling)
		return m.Resend(now)
	}
	return nil
}

// OnNodeRemoved handles the loss of either node at every phase.
func (m *Move) OnNodeRemoved(node string, now time.Time) []Outgoing {
	switch {
	case node == m.origin && (m.state == moveStopping || m.state == moveStoppingOnly):
		m.finishAbsent() // never stopped: the last checkpoint seen is all we know
	case node == m.dest && m.state == moveStopping:
		m.moveTo(moveStoppingOnly) // still need the origin's final checkpoint
	case node == m.dest && (m.state == moveCreating || m.state == moveCanceling):
		m.finishAbsent()
	}
	return nil
}

// OnTableRemoved: stopping goes on (removal needs it) but nothing is created; a dest that may
// already exist is removed.
func (m *Move) OnTableRemoved(table int64, now time.Time) []Outgoing {
	if table != m.span.TableId || m.tableRemoved {
		return nil
	}
	m.tableRemoved = true
	if m.state == moveCreating {
		m.moveTo(moveCanceling)
		return m.Resend(now)
	}
	return nil
}

// finishAbsent ends the Move with the span absent from the best checkpoint known.
func (m *Move) finishAbsent() {
	m.moveTo(moveDone)
	if m.tableRemoved {
		m.result = Result{Outcome: OutcomeTableRemoved}
		return
	}
	m.result = Result{Outcome: OutcomeAborted,
		Absent: []AbsentSpan{{Span: m.span, Mode: m.desc.Mode, Checkpoint: m.checkpoint}}}
}

// Finished returns the result once the Move is done.
func (m *Move) Finished() (Result, bool) { return m.result, m.state == moveDone }

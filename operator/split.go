package operator

import (
	"fmt"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// splitState is the lifecycle of a Split.
//
//	   Start
//	     |
//	     v
//	+----------+ parent Stopped/Removed (final ts) +----------+ every child Working or failed  +------+
//	| stopping |---------------------------------->| creating |------------------------------->| done |
//	+----------+                                   +----------+  retire parent, bind working   +------+
//	  |  origin lost / rejects: done, parent absent @ last known ts      children, failed ones absent
//	  |  a child's node lost: that child failed (absent @ final ts)
//	  |  table removed: keep stopping, then done (table removed), nothing created
//	  +--------------------------------------------------------------------> done
//
//	a child reports Working while stopping: the parent had stopped (children are only created
//	after that), so on to creating from the last checkpoint known.
//
//	phase timeout: stopping ends as after a refusal (parent left as it was); creating goes to
//	canceling: every child still waited for is taken back with a Remove; once each is gone
//	(Stopped/Removed, refused, node lost) it is failed, and the Split ends as from creating.
//
// A child fails when its node is lost, refuses the create, or reports it Stopped/Removed; it is
// then left absent from the parent's final checkpoint (or its own, when higher). The parent is
// retired as soon as it stopped: from then on its keys belong to the children. A table removed
// while creating does not cancel the creates (a node refuses a remove while the create of the
// same operator is in its journal): the Split ends as usual with outcome table-removed, and the
// maintainer removes the children through their spans, one operator per key range.
type splitState int

const (
	splitStopping splitState = iota
	splitCreating
	splitCanceling
	splitDone
)

var splitStateNames = [...]string{"stopping", "creating", "canceling", "done"}

func (s splitState) String() string { return splitStateNames[s] }

var splitTransitions = map[splitState][]splitState{
	splitStopping:  {splitCreating, splitDone},
	splitCreating:  {splitDone, splitCanceling},
	splitCanceling: {splitDone},
}

// childState is how far one child of a Split got.
type childState uint8

const (
	childPending   childState = iota // not seen working yet
	childWorking                     // reported Working: bound at the end
	childFailed                      // lost, refused or stopped: absent at the end
	childCanceling                   // its create timed out; taken back with a Remove
)

type splitChild struct {
	p     heartbeatpb.SpanPlacement
	state childState
	cp    uint64 // checkpoint it reported
}

// Split replaces one span by k adjacent sub-spans: it stops the parent dispatcher, reads its
// final checkpoint from the Stopped status and creates every child from exactly that ts.
type Split struct {
	desc         heartbeatpb.OperatorDescriptor
	parent       heartbeatpb.SpanPlacement
	children     []splitChild
	checkpoint   uint64 // last checkpoint seen from the parent; final once it stopped
	tableRemoved bool
	state        splitState
	result       Result
}

// NewSplit returns the Split d describes: one source (the parent), two or more targets whose
// spans, in order, cover exactly the parent's span. checkpoint is the parent's last known
// checkpoint. IDs are the descriptor's; CreatedMs defaults to now.
func NewSplit(d heartbeatpb.OperatorDescriptor, checkpoint uint64, now time.Time) (*Split, error) {
	if d.Kind != heartbeatpb.OpSplit {
		return nil, fmt.Errorf("%w: split: descriptor of kind %v", ErrInvalid, d.Kind)
	}
	if len(d.Sources) != 1 || len(d.Targets) < 2 {
		return nil, fmt.Errorf("%w: split %d.%d: want one source and two or more targets, got %d and %d",
			ErrInvalid, d.Id.Epoch, d.Id.Seq, len(d.Sources), len(d.Targets))
	}
	parent := d.Sources[0]
	if err := validPlacements("split", d); err != nil {
		return nil, err
	}
	spans := make([]heartbeatpb.TableSpan, len(d.Targets))
	for i, t := range d.Targets {
		spans[i] = t.Span
	}
	if u, err := span.Merge(spans); err != nil || !span.Equal(u, parent.Span) {
		return nil, fmt.Errorf("%w: split %d.%d: targets do not cover exactly the parent span %s",
			ErrInvalid, d.Id.Epoch, d.Id.Seq, span.String(parent.Span))
	}
	if d.CreatedMs == 0 {
		d.CreatedMs = now.UnixMilli()
	}
	d.StartTs = 0 // children start from the parent's final checkpoint
	s := &Split{desc: cloneDesc(d), checkpoint: checkpoint}
	s.parent = s.desc.Sources[0]
	for _, t := range s.desc.Targets {
		s.children = append(s.children, splitChild{p: t})
	}
	return s, nil
}

func (s *Split) ID() heartbeatpb.OperatorID                  { return s.desc.Id }
func (s *Split) Type() heartbeatpb.OperatorType              { return heartbeatpb.OpSplit }
func (s *Split) Descriptor() *heartbeatpb.OperatorDescriptor { return &s.desc }
func (s *Split) Phase() string                               { return s.state.String() }

// Spans locks the parent and every child span.
func (s *Split) Spans() []SpanRef {
	out := []SpanRef{RefOf(s.parent.Span, s.desc.Mode)}
	for _, c := range s.children {
		out = append(out, RefOf(c.p.Span, s.desc.Mode))
	}
	return out
}

func (s *Split) to(next splitState) {
	mustTransition("split", s.state, next, splitTransitions)
	s.state = next
}

// Start sends the remove half to the parent's node.
func (s *Split) Start(now time.Time) []Outgoing { return s.Resend(now) }

// Resend repeats the requests of the current phase: the parent's remove, the create of every
// child still waited for, or the remove of every child being taken back.
func (s *Split) Resend(time.Time) []Outgoing {
	switch s.state {
	case splitStopping:
		return []Outgoing{{Node: s.parent.NodeId,
			Schedule: request(&s.desc, heartbeatpb.ActionRemove, s.parent.DispatcherId, s.parent.Span, 0)}}
	case splitCreating:
		return s.childRequests(childPending, heartbeatpb.ActionCreate)
	case splitCanceling:
		return s.childRequests(childCanceling, heartbeatpb.ActionRemove)
	}
	return nil
}

// childRequests asks for action on every child in state, from the parent's final checkpoint.
func (s *Split) childRequests(state childState, action heartbeatpb.ScheduleAction) []Outgoing {
	var out []Outgoing
	for _, c := range s.children {
		if c.state == state {
			out = append(out, Outgoing{Node: c.p.NodeId,
				Schedule: request(&s.desc, action, c.p.DispatcherId, c.p.Span, s.checkpoint)})
		}
	}
	return out
}

// Abort rolls back a phase that got no answer: an unanswered parent stop ends as a refused one;
// children whose create got no answer are taken back (see the state diagram).
func (s *Split) Abort(now time.Time) []Outgoing {
	switch s.state {
	case splitStopping:
		return s.OnRejected(s.parent.NodeId, &heartbeatpb.RequestRejection{
			OperatorId: s.desc.Id, DispatcherId: s.parent.DispatcherId}, now)
	case splitCreating:
		for i := range s.children {
			if s.children[i].state == childPending {
				s.children[i].state = childCanceling
			}
		}
		s.to(splitCanceling)
		return s.Resend(now)
	}
	return nil
}

// OnStatus advances on the parent's Stopped report and the children's Working reports.
func (s *Split) OnStatus(node string, st *heartbeatpb.DispatcherStatus, now time.Time) []Outgoing {
	if matches(node, s.parent.NodeId, st, s.parent.DispatcherId) {
		return s.onParent(st, now)
	}
	for i := range s.children {
		if matches(node, s.children[i].p.NodeId, st, s.children[i].p.DispatcherId) {
			return s.onChild(i, st, now)
		}
	}
	return nil
}

func (s *Split) onParent(st *heartbeatpb.DispatcherStatus, now time.Time) []Outgoing {
	if s.state != splitStopping {
		return nil // late or duplicate: the final checkpoint is already fixed
	}
	s.checkpoint = maxTs(s.checkpoint, st.CheckpointTs)
	if !gone(st.State) {
		return nil
	}
	if s.tableRemoved {
		s.finish(Result{Outcome: OutcomeTableRemoved})
		return nil
	}
	s.to(splitCreating)
	if s.settled() {
		return nil
	}
	return s.Resend(now)
}

func (s *Split) onChild(i int, st *heartbeatpb.DispatcherStatus, now time.Time) []Outgoing {
	c := &s.children[i]
	if c.state == childCanceling {
		if gone(st.State) {
			c.state, c.cp = childFailed, maxTs(s.checkpoint, st.CheckpointTs)
			s.settled()
		}
		return nil // still working: the Remove is resent until it stops
	}
	proven := false
	if s.state == splitStopping && st.State == heartbeatpb.StateWorking {
		// A child is created only after the parent reported Stopped, and its ID is this Split's
		// alone: a working child proves the parent stopped (a restored Split whose child entry
		// was already acknowledged learns it here; see Move.onDest). The children still waited
		// for are created from the last checkpoint known, at or below the parent's final one.
		s.to(splitCreating)
		proven = true
	}
	if s.state != splitCreating || c.state != childPending {
		return nil // duplicate or late
	}
	c.cp = maxTs(s.checkpoint, st.CheckpointTs)
	if st.State == heartbeatpb.StateWorking {
		c.state = childWorking
	} else if gone(st.State) {
		c.state = childFailed
	}
	if s.settled() || !proven {
		return nil
	}
	return s.Resend(now)
}

// OnRejected: a refused parent remove means it has no such dispatcher (nothing is known past
// the last checkpoint); a refused child create leaves that child absent.
func (s *Split) OnRejected(node string, rej *heartbeatpb.RequestRejection, now time.Time) []Outgoing {
	if rej == nil || rej.OperatorId != s.desc.Id {
		return nil
	}
	if s.state == splitStopping && node == s.parent.NodeId && rej.DispatcherId == s.parent.DispatcherId {
		// A node refuses a remove only while the dispatcher is busy (another operator's journal
		// entry for its span, a merge); it still works. So the Split ends leaving the parent as
		// it was: taking it for gone put a second dispatcher on its span
		// (tests/sim/testdata/move_remove_refused.txt, seed 118).
		s.finish(Result{Outcome: OutcomeAborted})
		if s.tableRemoved {
			s.result = Result{Outcome: OutcomeTableRemoved}
		}
		return nil
	}
	if s.state != splitCreating && s.state != splitCanceling {
		return nil
	}
	for i := range s.children {
		c := &s.children[i]
		waited := c.state == childPending || c.state == childCanceling
		if node == c.p.NodeId && rej.DispatcherId == c.p.DispatcherId && waited {
			c.state, c.cp = childFailed, s.checkpoint
		}
	}
	s.settled()
	return nil
}

// OnNodeRemoved handles the loss of the parent's node or of children's nodes at every phase.
func (s *Split) OnNodeRemoved(node string, now time.Time) []Outgoing {
	if s.state == splitStopping && node == s.parent.NodeId {
		s.abortParent() // never stopped: the last checkpoint seen is all we know
		return nil
	}
	if s.state == splitDone {
		return nil
	}
	for i := range s.children {
		if c := &s.children[i]; c.p.NodeId == node && c.state != childFailed {
			c.state, c.cp = childFailed, s.checkpoint
		}
	}
	if s.state == splitCreating || s.state == splitCanceling {
		s.settled()
	}
	return nil
}

// OnTableRemoved: while stopping, stopping goes on (removal needs it) but nothing is created;
// while creating, the creates run to their end (see the state diagram).
func (s *Split) OnTableRemoved(table int64, now time.Time) []Outgoing {
	if table == s.parent.Span.TableId {
		s.tableRemoved = true
	}
	return nil
}

// settled finishes the Split when no child is waited for any more, and reports whether it did.
func (s *Split) settled() bool {
	if s.state != splitCreating && s.state != splitCanceling {
		return s.state == splitDone
	}
	for _, c := range s.children {
		if c.state == childPending || c.state == childCanceling {
			return false
		}
	}
	r := Result{Outcome: OutcomeSucceeded, Retire: []RetiredSpan{{Span: s.parent.Span, Mode: s.desc.Mode}}}
	for _, c := range s.children {
		if c.state == childWorking {
			r.Bind = append(r.Bind, Binding{Span: c.p.Span, Mode: s.desc.Mode, Node: c.p.NodeId,
				Dispatcher: c.p.DispatcherId, Checkpoint: c.cp})
			continue
		}
		r.Outcome = OutcomeAborted
		r.Absent = append(r.Absent, AbsentSpan{Span: c.p.Span, Mode: s.desc.Mode, Checkpoint: maxTs(c.cp, s.checkpoint)})
	}
	if s.tableRemoved {
		r.Outcome = OutcomeTableRemoved
	}
	s.finish(r)
	return true
}

// abortParent ends the Split before the parent stopped: the parent stays whole, absent from the
// last checkpoint seen (or gone with its table).
func (s *Split) abortParent() {
	if s.tableRemoved {
		s.finish(Result{Outcome: OutcomeTableRemoved})
		return
	}
	s.finish(Result{Outcome: OutcomeAborted,
		Absent: []AbsentSpan{{Span: s.parent.Span, Mode: s.desc.Mode, Checkpoint: s.checkpoint}}})
}

func (s *Split) finish(r Result) {
	s.to(splitDone)
	s.result = r
}

// Finished returns the result once the Split is done.
func (s *Split) Finished() (Result, bool) { return s.result, s.state == splitDone }

// validPlacements checks every placement of d: a valid span of one table, a node, and a
// dispatcher ID used once.
func validPlacements(kind string, d heartbeatpb.OperatorDescriptor) error {
	seen := map[heartbeatpb.DispatcherID]bool{}
	table := int64(0)
	for i, p := range append(append([]heartbeatpb.SpanPlacement(nil), d.Sources...), d.Targets...) {
		if err := validateSpan(kind, p.Span); err != nil {
			return err
		}
		if i == 0 {
			table = p.Span.TableId
		}
		switch {
		case p.Span.TableId != table:
			return fmt.Errorf("%w: %s %d.%d: spans of tables %d and %d", ErrInvalid, kind, d.Id.Epoch, d.Id.Seq, table, p.Span.TableId)
		case p.NodeId == "":
			return fmt.Errorf("%w: %s %d.%d: placement without node", ErrInvalid, kind, d.Id.Epoch, d.Id.Seq)
		case seen[p.DispatcherId]:
			return fmt.Errorf("%w: %s %d.%d: dispatcher %d.%d named twice", ErrInvalid, kind, d.Id.Epoch, d.Id.Seq,
				p.DispatcherId.Hi, p.DispatcherId.Lo)
		}
		seen[p.DispatcherId] = true
	}
	return nil
}

// cloneDesc copies d's placement slices so the operator owns them.
func cloneDesc(d heartbeatpb.OperatorDescriptor) heartbeatpb.OperatorDescriptor {
	d.Sources = append([]heartbeatpb.SpanPlacement(nil), d.Sources...)
	d.Targets = append([]heartbeatpb.SpanPlacement(nil), d.Targets...)
	return d
}

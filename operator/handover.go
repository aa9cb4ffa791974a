package operator

import (
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// handoverPhase is the lifecycle a Move and a Split share: stop the source (stopStep), then
// create every target from its final checkpoint (createStep).
//
//	   Start
//	     |
//	     v
//	+----------+ source Stopped/Removed (final ts) +----------+ no target waited for  +------+
//	| stopping |---------------------------------->| creating |----------------------->| done |
//	+----------+                                   +----------+                        +------+
//	  |  source lost: done, source absent @ last known ts      | phase timeout: pending ones
//	  |  source refuses, phase timeout: done, source as it was | table removed: all but failed
//	  |  table removed: keep stopping, then done, nothing made v   taken back
//	  |  a target's node lost: that target failed           +-----------+ no target waited for
//	  +---------------------------------------------------> | canceling |--------------------> done
//	                                                        +-----------+
//
// A target is pending until it reports Working (then bound) or fails: its node is lost, it
// refuses the create, or it reports Stopped/Removed (no other operator knows its ID; what stops
// it is this operator's own take-back, sent by a maintainer that then failed over). A failed
// target is left absent from its own checkpoint or the source's final one, whichever is higher.
// A pending target reporting Working while the source is still waited for proves that the
// source stopped (targets are created only after that, and their IDs are this operator's
// alone): on to creating, the others created from the last checkpoint known (or, when the table
// has left meanwhile, every target taken back at once).
//
// The cancel rule, one for every target: an operator takes a create of its own back with a
// Remove of the same dispatcher on the same node. The node's journal holds the create, and a
// Remove of the same operator and dispatcher replaces it (dispatchermanager cancelCreate): a
// dispatcher made is stopped and reported Stopped at its final checkpoint, one never made is
// reported Removed at once. The take-back ends with that report, a refusal (the create never
// got there and another operator's request holds the span) or the node's loss; the target is
// then failed. A phase timeout takes back the pending targets and keeps the working ones; the
// table leaving takes back every target not failed, working ones too, so the operator ends with
// outcome table-removed and nothing of its own left on any node.
type handoverPhase int

const (
	phaseStopping handoverPhase = iota
	phaseCreating
	phaseCanceling
	phaseDone
	phasePreparing   // make-before-break: the target is being prepared, the source works (prepare.go)
	phaseWithdrawing // make-before-break: ending before the source stopped; the prepared target is taken back
)

var handoverPhaseNames = [...]string{"stopping", "creating", "canceling", "done", "preparing", "withdrawing"}

func (p handoverPhase) String() string { return handoverPhaseNames[p] }

var handoverTransitions = map[handoverPhase][]handoverPhase{
	phaseStopping:    {phaseCreating, phaseWithdrawing, phaseDone},
	phaseCreating:    {phaseCanceling, phaseDone},
	phaseCanceling:   {phaseDone},
	phasePreparing:   {phaseStopping, phaseCreating, phaseWithdrawing, phaseDone},
	phaseWithdrawing: {phaseDone},
}

// handover is the step sequence of a Move (one target with the source's span) and of a Split
// (two or more targets covering the source's span, which it then retires).
type handover struct {
	desc         heartbeatpb.OperatorDescriptor
	stop         stopStep
	create       createStep
	retireSource bool // the targets replace the source's span (a Split)
	tableRemoved bool
	phase        handoverPhase
	result       Result
	// committing: the create commits a target that was prepared (make-before-break), so the
	// creating phase is shown as committing; a Move that fell back to break-before-make (its
	// target could not prepare) creates as usual. pending: the result a withdrawal ends with.
	committing bool
	pending    Result
}

// newHandover starts the sequence d describes (one source; targets validated by the caller).
func newHandover(d heartbeatpb.OperatorDescriptor, checkpoint uint64, retireSource bool) handover {
	return handover{desc: d, stop: stopStep{src: d.Sources[0], checkpoint: checkpoint},
		create: newCreateStep(d.Targets), retireSource: retireSource}
}

func (h *handover) ID() heartbeatpb.OperatorID                  { return h.desc.Id }
func (h *handover) Type() heartbeatpb.OperatorType              { return h.desc.Kind }
func (h *handover) Descriptor() *heartbeatpb.OperatorDescriptor { return &h.desc }

// Spans locks the source's span and every target span that differs from it.
func (h *handover) Spans() []SpanRef {
	out := []SpanRef{RefOf(h.stop.src.Span, h.desc.Mode)}
	for _, t := range h.create.targets {
		if !spanEqual(t.p.Span, h.stop.src.Span) {
			out = append(out, RefOf(t.p.Span, h.desc.Mode))
		}
	}
	return out
}

func (h *handover) to(next handoverPhase) {
	mustTransition(h.desc.Kind.String(), h.phase, next, handoverTransitions)
	h.phase = next
}

// Start sends the source's remove.
func (h *handover) Start(now time.Time) []Outgoing { return h.Resend(now) }

// Resend repeats the requests of the current phase: the source's remove, or the create or
// take-back of every target still waited for, from the source's final checkpoint.
func (h *handover) Resend(time.Time) []Outgoing {
	switch h.phase {
	case phasePreparing:
		return h.create.prepareRequests(&h.desc, h.stop.checkpoint)
	case phaseStopping:
		return []Outgoing{h.stop.request(&h.desc)}
	case phaseCreating, phaseCanceling, phaseWithdrawing:
		return h.create.requests(&h.desc, h.stop.checkpoint)
	}
	return nil
}

// OnStatus advances on the source's Stopped report and the targets' reports.
func (h *handover) OnStatus(node string, st *heartbeatpb.DispatcherStatus, now time.Time) []Outgoing {
	if st == nil {
		return nil
	}
	if h.stop.names(node, st.Id) {
		return h.onSource(st, now)
	}
	if i := h.create.find(node, st.Id); i >= 0 {
		return h.onTarget(i, st, now)
	}
	return nil
}

func (h *handover) onSource(st *heartbeatpb.DispatcherStatus, now time.Time) []Outgoing {
	if !h.beforeStop() || !h.stop.observe(st) {
		return nil // still working, or late: the final checkpoint is already fixed
	}
	if h.tableRemoved {
		return h.endBeforeCreate(Result{Outcome: OutcomeTableRemoved})
	}
	h.committing = h.create.commitPrepared()
	h.to(phaseCreating)
	if h.settle() {
		return nil
	}
	return h.Resend(now)
}

func (h *handover) onTarget(i int, st *heartbeatpb.DispatcherStatus, now time.Time) []Outgoing {
	t := &h.create.targets[i]
	if t.state == targetTakingBack {
		if gone(st.State) {
			t.state, t.cp = targetFailed, maxTs(h.stop.checkpoint, st.CheckpointTs)
			h.settle()
		}
		return nil // still working: the remove is resent until it stops
	}
	if h.phase == phasePreparing && st.State != heartbeatpb.StateWorking {
		return h.onPrepared(t, st, now)
	}
	if t.state != targetPending && !(t.state == targetPrepared && st.State == heartbeatpb.StateWorking) {
		return nil // duplicate or late
	}
	proven := false
	if h.beforeStop() {
		if st.State != heartbeatpb.StateWorking {
			return nil
		}
		// A restored operator whose target's journal entry was already acknowledged (so no
		// journaled create proves the stop) learns it here; waiting for a source that no longer
		// answers left the span absent under the working target (tests/sim/testdata/
		// dest_before_stop.txt). A prepared one works only once committed, after the stop.
		h.create.commitPrepared()
		h.to(phaseCreating)
		proven = true
	}
	if h.phase != phaseCreating {
		return nil
	}
	switch {
	case st.State == heartbeatpb.StateWorking:
		t.state = targetWorking
	case gone(st.State):
		t.state = targetFailed
	default:
		// A restored Move can learn that its target is prepared only after the source's stop.
		h.committing = h.committing || st.State == heartbeatpb.StatePrepared
		return nil
	}
	t.cp = maxTs(h.stop.checkpoint, st.CheckpointTs)
	if proven && h.tableRemoved {
		h.takeBackAll()
	}
	if h.settle() || !proven {
		return nil
	}
	return h.Resend(now)
}

// OnRejected: a node refuses a remove only while the dispatcher is busy (another operator's
// journal entry for its span, an in-flight merge); an unknown dispatcher is answered Removed,
// not refused. So a refused source remove means the source still works: the operator ends
// leaving it as it was (taking it for gone put a second dispatcher on its span: tests/sim/
// testdata/move_remove_refused.txt, seed 118). A refused create or take-back fails its target.
// A refusal always names the dispatcher of the refused request.
func (h *handover) OnRejected(node string, rej *heartbeatpb.RequestRejection, now time.Time) []Outgoing {
	if rej == nil || rej.OperatorId != h.desc.Id {
		return nil
	}
	if h.phase == phaseStopping && h.stop.names(node, rej.DispatcherId) {
		return h.keepSource()
	}
	if h.phase == phasePreparing {
		return h.onPrepareRefused(node, rej, now)
	}
	if h.phase != phaseCreating && h.phase != phaseCanceling && h.phase != phaseWithdrawing {
		return nil
	}
	if i := h.create.find(node, rej.DispatcherId); i >= 0 && h.create.targets[i].waited() {
		h.create.targets[i].state, h.create.targets[i].cp = targetFailed, h.stop.checkpoint
		h.settle()
	}
	return nil
}

// Abort rolls back a phase that got no answer: an unanswered stop ends as a refused one (the
// source keeps its span); the pending targets are taken back (see the cancel rule).
func (h *handover) Abort(now time.Time) []Outgoing {
	switch h.phase {
	case phasePreparing, phaseStopping:
		return h.keepSource()
	case phaseCreating:
		h.to(phaseCanceling)
		out := h.create.takeBack(&h.desc, h.stop.checkpoint, targetPending)
		h.settle()
		return out
	}
	return nil
}

// OnNodeRemoved handles the loss of the source's node or of targets' nodes at every phase.
func (h *handover) OnNodeRemoved(node string, now time.Time) []Outgoing {
	switch {
	case h.phase == phaseDone:
	case (h.beforeStop() || h.phase == phaseWithdrawing) && node == h.stop.src.NodeId:
		// Never stopped: the last checkpoint seen is all we know, the span stays whole.
		out := h.endBeforeCreate(Result{Outcome: OutcomeAborted, Absent: []AbsentSpan{{
			Span: h.stop.src.Span, Mode: h.desc.Mode, Checkpoint: h.stop.checkpoint}}})
		h.create.nodeLost(node, h.stop.checkpoint)
		h.settle()
		return out
	case h.phase == phasePreparing:
		// The target's node: nothing was taken from the source.
		h.create.nodeLost(node, h.stop.checkpoint)
		return h.keepSource()
	default:
		h.create.nodeLost(node, h.stop.checkpoint)
		h.settle()
	}
	return nil
}

// OnTableRemoved: while stopping, the stop goes on (removal needs it) but nothing is created;
// after that, every target not failed is taken back (see the cancel rule).
func (h *handover) OnTableRemoved(table int64, now time.Time) []Outgoing {
	if table != h.stop.src.Span.TableId || h.tableRemoved {
		return nil
	}
	h.tableRemoved = true
	if h.phase == phaseCreating || h.phase == phaseCanceling {
		return h.takeBackAll()
	}
	if h.phase == phasePreparing {
		return h.keepSource()
	}
	return nil
}

// takeBackAll takes back every target not failed and returns the removes that newly asks for.
func (h *handover) takeBackAll() []Outgoing {
	out := h.create.takeBack(&h.desc, h.stop.checkpoint, targetPending, targetWorking)
	if h.phase == phaseCreating && h.create.waiting() {
		h.to(phaseCanceling)
	}
	return out
}

// keepSource ends the operator before its source stopped, leaving it as it was.
func (h *handover) keepSource() []Outgoing {
	return h.endBeforeCreate(Result{Outcome: OutcomeAborted})
}

// settle finishes the operator once the source stopped and no target is waited for any more,
// and reports whether it is done.
func (h *handover) settle() bool {
	if h.phase == phaseWithdrawing && !h.create.waiting() {
		h.finish(h.pending)
	}
	if h.phase != phaseCreating && h.phase != phaseCanceling {
		return h.phase == phaseDone
	}
	if h.create.waiting() {
		return false
	}
	if h.tableRemoved {
		h.finish(Result{Outcome: OutcomeTableRemoved})
		return true
	}
	r := Result{Outcome: OutcomeSucceeded}
	if h.retireSource {
		r.Retire = []RetiredSpan{{Span: h.stop.src.Span, Mode: h.desc.Mode}}
	}
	h.create.result(&r, h.desc.Mode, h.stop.checkpoint)
	r.MadeBeforeBreak = h.committing && r.Outcome == OutcomeSucceeded
	h.finish(r)
	return true
}

func (h *handover) finish(r Result) {
	if h.tableRemoved {
		r = Result{Outcome: OutcomeTableRemoved}
	}
	h.to(phaseDone)
	h.result = r
}

// Finished returns the result once the operator is done.
func (h *handover) Finished() (Result, bool) { return h.result, h.phase == phaseDone }

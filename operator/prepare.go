package operator

import (
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// Make-before-break, the phases a Move adds in front of the handover's when its descriptor says
// make_before_break:
//
//	+-----------+ target Prepared  +----------+ source Stopped (F) +------------+
//	| preparing |----------------->| stopping |------------------->| creating   | (the create
//	+-----------+                  +----------+                    | = commit F)|  commits the
//	   |  prepare refused (the node's kind cannot prepare):        +------------+  prepared one)
//	   |    stopping without a prepared target (break-before-make)
//	   |  target lost or gone: done, source as it was
//	   |  timeout, table removed, source refuses or is lost (also from stopping):
//	   v    take the prepared target back                    +------+
//	+-------------+ target Removed, refused or lost          |      |
//	| withdrawing |----------------------------------------->| done | source as it was (aborted),
//	+-------------+                                          +------+ absent (source lost), or
//	                                                                  table-removed
//
// The target is prepared from the source's last known checkpoint and writes nothing until the
// create of the creating phase, which is sent only after the source's Stopped report fixed F: so
// I1 holds as in break-before-make, only the destination's start-up and catch-up move out of the
// pause. A prepared target that is never committed is taken back with a Remove of its own (the
// cancel rule of handover.go); the node abandons it, and also abandons it by itself when the
// operator is acknowledged without a commit (dispatchermanager/prepare.go), so a maintainer
// that fails over and does not resume the Move leaves nothing behind either. Restore rebuilds
// the phase from the reports as for every operator: a Prepared target means stopping, a
// Stopped source creating (commit from its final checkpoint), a working target done.

// WithPrepare makes m a make-before-break Move; call it before Start.
func (m *Move) WithPrepare() *Move {
	m.desc.MakeBeforeBreak, m.phase = true, phasePreparing
	return m
}

// beforeStop reports whether the source's final checkpoint is still unknown.
func (h *handover) beforeStop() bool { return h.phase == phaseStopping || h.phase == phasePreparing }

// onPrepared takes a target's report while it is being prepared.
func (h *handover) onPrepared(t *target, st *heartbeatpb.DispatcherStatus, now time.Time) []Outgoing {
	switch {
	case st.State == heartbeatpb.StatePrepared && t.state == targetPending:
		t.state = targetPrepared
		h.to(phaseStopping)
		return h.Resend(now)
	case gone(st.State) && (t.state == targetPending || t.state == targetPrepared):
		t.state, t.cp = targetFailed, h.stop.checkpoint
		return h.keepSource()
	}
	return nil
}

// onPrepareRefused: a node refuses a prepare it cannot do (its dispatcher kind cannot prepare)
// or one whose span is busy there; either way the Move goes on break-before-make: stop the
// source, then create the target from the final checkpoint (which that node may refuse again,
// as any create).
func (h *handover) onPrepareRefused(node string, rej *heartbeatpb.RequestRejection, now time.Time) []Outgoing {
	i := h.create.find(node, rej.DispatcherId)
	if i < 0 || h.create.targets[i].state != targetPending {
		return nil
	}
	h.to(phaseStopping)
	return h.Resend(now)
}

// endBeforeCreate ends the operator with r before any target was created from the source's
// final checkpoint; a target prepared, or being prepared, is withdrawn first.
func (h *handover) endBeforeCreate(r Result) []Outgoing {
	if h.phase == phaseWithdrawing {
		h.pending = r // the source was lost meanwhile: absent now
		return nil
	}
	from := []targetState{targetPrepared}
	if h.phase == phasePreparing {
		from = append(from, targetPending)
	}
	out := h.create.takeBack(&h.desc, h.stop.checkpoint, from...)
	if len(out) == 0 {
		h.finish(r)
		return nil
	}
	h.pending = r
	h.to(phaseWithdrawing)
	return out
}

// prepareRequests asks for every target that is waited for while preparing: a prepare from ts
// for the pending ones, a remove for the ones being taken back.
func (c *createStep) prepareRequests(d *heartbeatpb.OperatorDescriptor, ts uint64) []Outgoing {
	var out []Outgoing
	for _, t := range c.targets {
		if act, ok := t.action(); ok {
			if act == heartbeatpb.ActionCreate {
				act = heartbeatpb.ActionPrepare
			}
			out = append(out, Outgoing{Node: t.p.NodeId, Schedule: request(d, act, t.p.DispatcherId, t.p.Span, ts)})
		}
	}
	return out
}

// commitPrepared makes every prepared target pending again: its create now commits it. It
// reports whether there was one.
func (c *createStep) commitPrepared() bool {
	found := false
	for i := range c.targets {
		if c.targets[i].state == targetPrepared {
			c.targets[i].state, found = targetPending, true
		}
	}
	return found
}

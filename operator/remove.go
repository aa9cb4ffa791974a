package operator

import (
	"fmt"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// removeState is the lifecycle of a Remove.
//
//	   Start
//	     |
//	     v
//	+----------+  origin reports Stopped/Removed (final ts)   +------+
//	| stopping |--------------------------------------------->| done |  span absent @ final ts
//	+----------+  origin lost / origin rejects                +------+  span absent @ last known ts
//	     |  origin reports Working: remember its checkpoint
//	     +---(stays)
type removeState int

const (
	removeStopping removeState = iota
	removeDone
)

var removeStateNames = [...]string{"stopping", "done"}

func (s removeState) String() string { return removeStateNames[s] }

var removeTransitions = map[removeState][]removeState{
	removeStopping: {removeDone},
}

// Remove stops one dispatcher: the stop step of a handover (steps.go) alone. Its result marks
// the span absent from the dispatcher's final checkpoint; the maintainer applies that only when
// the span was bound to this operator.
type Remove struct {
	desc         heartbeatpb.OperatorDescriptor
	stop         stopStep
	tableRemoved bool
	state        removeState
	result       Result
}

// NewRemove returns a Remove of dispatcher did serving s (mode) on origin, whose last known
// checkpoint is checkpoint.
func NewRemove(id heartbeatpb.OperatorID, s heartbeatpb.TableSpan, mode heartbeatpb.Mode, origin string,
	did heartbeatpb.DispatcherID, checkpoint uint64, now time.Time) (*Remove, error) {
	if err := validateSpan("remove", s); err != nil {
		return nil, err
	}
	if origin == "" {
		return nil, fmt.Errorf("%w: remove of %v: empty origin node", ErrInvalid, RefOf(s, mode).Span)
	}
	src := placement(s, origin, did)
	return &Remove{
		desc: heartbeatpb.OperatorDescriptor{
			Id: id, Kind: heartbeatpb.OpRemove, Mode: mode,
			Sources:   []heartbeatpb.SpanPlacement{src},
			CreatedMs: now.UnixMilli(),
		},
		stop: stopStep{src: src, checkpoint: checkpoint},
	}, nil
}

func (r *Remove) ID() heartbeatpb.OperatorID                  { return r.desc.Id }
func (r *Remove) Type() heartbeatpb.OperatorType              { return heartbeatpb.OpRemove }
func (r *Remove) Descriptor() *heartbeatpb.OperatorDescriptor { return &r.desc }
func (r *Remove) Spans() []SpanRef                            { return []SpanRef{RefOf(r.stop.src.Span, r.desc.Mode)} }
func (r *Remove) Phase() string                               { return r.state.String() }

// Start sends the remove request.
func (r *Remove) Start(now time.Time) []Outgoing { return r.Resend(now) }

// Resend repeats the remove request while the origin has not reported the dispatcher stopped.
func (r *Remove) Resend(time.Time) []Outgoing {
	if r.state != removeStopping {
		return nil
	}
	return []Outgoing{r.stop.request(&r.desc)}
}

// OnStatus finishes once the origin reports the dispatcher stopped.
func (r *Remove) OnStatus(node string, st *heartbeatpb.DispatcherStatus, now time.Time) []Outgoing {
	if st != nil && r.state == removeStopping && r.stop.names(node, st.Id) && r.stop.observe(st) {
		r.finish()
	}
	return nil
}

// OnRejected: a node refuses a remove only while the dispatcher is busy (another operator's
// journal entry for its span, an in-flight merge); an unknown one is answered Removed. The
// dispatcher still works, so the Remove ends without marking its span absent; the maintainer
// tries again when it next sees the dispatcher.
func (r *Remove) OnRejected(node string, rej *heartbeatpb.RequestRejection, now time.Time) []Outgoing {
	if r.state == removeStopping && rej != nil && node == r.stop.src.NodeId && rej.OperatorId == r.desc.Id {
		mustTransition("remove", r.state, removeDone, removeTransitions)
		r.state = removeDone
		r.result = Result{Outcome: OutcomeAborted}
		if r.tableRemoved {
			r.result = Result{Outcome: OutcomeTableRemoved}
		}
	}
	return nil
}

// Abort ends a Remove whose origin answered nothing: it ends as after a refusal, the span left
// bound as it was (the node's set, through its heartbeat digest, tells whether the dispatcher
// still works).
func (r *Remove) Abort(now time.Time) []Outgoing {
	if r.state == removeStopping {
		r.OnRejected(r.stop.src.NodeId, &heartbeatpb.RequestRejection{OperatorId: r.desc.Id, DispatcherId: r.stop.src.DispatcherId}, now)
	}
	return nil
}

// OnNodeRemoved: a lost origin has stopped for good; the last checkpoint seen is all we know.
func (r *Remove) OnNodeRemoved(node string, now time.Time) []Outgoing {
	if r.state == removeStopping && node == r.stop.src.NodeId {
		r.finish()
	}
	return nil
}

// OnTableRemoved keeps stopping (that is what removal needs) but drops the absent span.
func (r *Remove) OnTableRemoved(table int64, now time.Time) []Outgoing {
	if table == r.stop.src.Span.TableId {
		r.tableRemoved = true
	}
	return nil
}

func (r *Remove) finish() {
	mustTransition("remove", r.state, removeDone, removeTransitions)
	r.state = removeDone
	if r.tableRemoved {
		r.result = Result{Outcome: OutcomeTableRemoved}
		return
	}
	r.result = Result{Outcome: OutcomeSucceeded,
		Absent: []AbsentSpan{{Span: r.stop.src.Span, Mode: r.desc.Mode, Checkpoint: r.stop.checkpoint}}}
}

// Finished returns the result once the dispatcher is stopped or its node is gone.
func (r *Remove) Finished() (Result, bool) { return r.result, r.state == removeDone }

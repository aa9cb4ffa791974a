package operator

import (
	"errors"
	"fmt"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// ErrInvalid wraps every error about malformed operator input.
var ErrInvalid = errors.New("operator: invalid input")

// SpanRef names one span in one mode: the unit an operator locks. Comparable, a map key.
type SpanRef struct {
	Span span.Key
	Mode heartbeatpb.Mode
}

// RefOf returns the SpanRef of s in mode.
func RefOf(s heartbeatpb.TableSpan, mode heartbeatpb.Mode) SpanRef {
	return SpanRef{Span: span.KeyOf(s), Mode: mode}
}

// Operator is one schedule change in flight for one or more spans. Implementations are pure
// state machines: every method takes `now` and returns the requests to send; none of them
// touches state outside the operator.
type Operator interface {
	ID() heartbeatpb.OperatorID
	Type() heartbeatpb.OperatorType
	Descriptor() *heartbeatpb.OperatorDescriptor
	Spans() []SpanRef
	Start(now time.Time) []Outgoing
	OnStatus(node string, st *heartbeatpb.DispatcherStatus, now time.Time) []Outgoing
	OnNodeRemoved(node string, now time.Time) []Outgoing
	OnTableRemoved(table int64, now time.Time) []Outgoing
	Resend(now time.Time) []Outgoing
	Finished() (Result, bool)
}

// The optional interfaces below are what the Controller looks for beside Operator. Every kind in
// this package implements RejectionHandler and Phaser, and every kind but Merge implements Aborter
// (a Merge is one request its node carries out whole; see the assertions below). An Operator
// without RejectionHandler never hears of refusals (the Controller drops them; its phase times
// out instead), one without Aborter is only resent when its phase times out, and one without
// Phaser shows no phase, so its phase timeout counts from its start.

// RejectionHandler is implemented by operators that react to a node refusing one of their
// requests.
type RejectionHandler interface {
	OnRejected(node string, rej *heartbeatpb.RequestRejection, now time.Time) []Outgoing
}

// Aborter is implemented by operators that can roll themselves back when a phase gets neither
// progress nor a refusal for ControllerConfig.PhaseTimeout. A phase that only waits for a stop
// ends leaving the span as it was (the source still serves it, as after a refusal); a phase
// that created or may have created dispatchers takes them back with a Remove of its own and
// ends, once they are gone, with the spans absent at the last checkpoint known. Abort is called
// at most once per operator.
type Aborter interface {
	Abort(now time.Time) []Outgoing
}

// Phaser is implemented by operators that can name their current phase, for status output and
// for the phase timeout (a phase change is the progress it waits for; tick.go).
type Phaser interface {
	Phase() string
}

// What each kind implements beside Operator; the Controller relies on it (see above).
var (
	_ = []interface {
		Operator
		RejectionHandler
		Aborter
		Phaser
	}{(*Add)(nil), (*Remove)(nil), (*Move)(nil), (*Split)(nil)}
	_ = []interface {
		Operator
		RejectionHandler
		Phaser
	}{(*Merge)(nil)}
)

// Outgoing is one request for one node. Exactly one of Schedule and Merge is set.
type Outgoing struct {
	Node     string
	Schedule *heartbeatpb.ScheduleDispatcherRequest
	Merge    *heartbeatpb.MergeDispatcherRequest
}

// Outcome says how an operator ended.
type Outcome int

const (
	// OutcomeSucceeded: the operator did what it was created for.
	OutcomeSucceeded Outcome = iota
	// OutcomeAborted: a node it needed was lost or refused it; spans went back to absent.
	OutcomeAborted
	// OutcomeTableRemoved: its table left the changefeed; nothing is bound or marked absent.
	OutcomeTableRemoved
)

func (o Outcome) String() string {
	switch o {
	case OutcomeSucceeded:
		return "succeeded"
	case OutcomeAborted:
		return "aborted"
	case OutcomeTableRemoved:
		return "table-removed"
	}
	return "unknown"
}

// Binding says: span (mode) is now served by dispatcher on node, which has reached checkpoint.
type Binding struct {
	Span       heartbeatpb.TableSpan
	Mode       heartbeatpb.Mode
	Node       string
	Dispatcher heartbeatpb.DispatcherID
	Checkpoint uint64
}

// AbsentSpan says: span (mode) has no dispatcher; a new one must start from Checkpoint, which is
// never above what the span's key range has reached (invariant I2).
type AbsentSpan struct {
	Span       heartbeatpb.TableSpan
	Mode       heartbeatpb.Mode
	Checkpoint uint64
}

// RetiredSpan says: span (mode) no longer exists as a unit of the schedule (a Split's parent,
// a Merge's sources). The Bind and Absent spans of the same Result that the maintainer does not
// hold yet take its keys over.
type RetiredSpan struct {
	Span heartbeatpb.TableSpan
	Mode heartbeatpb.Mode
}

// Result is what a finished operator asks the maintainer to apply to its span DB.
type Result struct {
	Outcome Outcome
	Bind    []Binding
	Absent  []AbsentSpan
	Retire  []RetiredSpan
	// MadeBeforeBreak: the operator succeeded by committing a target prepared while the source
	// still worked (make-before-break), so the span paused only for the commit. False for a
	// Move that fell back to break-before-make because its target could not prepare.
	MadeBeforeBreak bool
}

// placement builds a descriptor placement.
func placement(s heartbeatpb.TableSpan, node string, id heartbeatpb.DispatcherID) heartbeatpb.SpanPlacement {
	return heartbeatpb.SpanPlacement{Span: s, DispatcherId: id, NodeId: node}
}

// request builds one half of an operator: every request carries the operator's type, ID and its
// whole descriptor so a single journal entry is enough to rebuild the operator.
func request(d *heartbeatpb.OperatorDescriptor, action heartbeatpb.ScheduleAction,
	id heartbeatpb.DispatcherID, s heartbeatpb.TableSpan, startTs uint64) *heartbeatpb.ScheduleDispatcherRequest {
	return &heartbeatpb.ScheduleDispatcherRequest{
		Config: heartbeatpb.DispatcherConfig{
			Id:      id,
			Span:    s,
			StartTs: startTs,
			Mode:    d.Mode,
		},
		Action:       action,
		OperatorType: d.Kind,
		Operator:     *d,
	}
}

// matches reports whether a status from node is about dispatcher id on wantNode.
func matches(node, wantNode string, st *heartbeatpb.DispatcherStatus, id heartbeatpb.DispatcherID) bool {
	return st != nil && node == wantNode && st.Id == id
}

// gone reports whether a reported state means the dispatcher no longer processes data.
func gone(s heartbeatpb.ComponentState) bool {
	return s == heartbeatpb.StateStopped || s == heartbeatpb.StateRemoved
}

// maxTs returns the larger ts.
func maxTs(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// nodesOf returns the distinct nodes a descriptor involves, sources first.
func nodesOf(d *heartbeatpb.OperatorDescriptor) []string {
	var out []string
	add := func(n string) {
		for _, x := range out {
			if x == n {
				return
			}
		}
		out = append(out, n)
	}
	for _, p := range d.Sources {
		add(p.NodeId)
	}
	for _, p := range d.Targets {
		add(p.NodeId)
	}
	return out
}

// Nodes returns the distinct nodes op involves (its descriptor's sources and targets).
func Nodes(op Operator) []string { return nodesOf(op.Descriptor()) }

// Dispatchers returns every dispatcher ID op's descriptor names.
func Dispatchers(op Operator) []heartbeatpb.DispatcherID {
	d := op.Descriptor()
	out := make([]heartbeatpb.DispatcherID, 0, len(d.Sources)+len(d.Targets))
	for _, p := range d.Sources {
		out = append(out, p.DispatcherId)
	}
	for _, p := range d.Targets {
		out = append(out, p.DispatcherId)
	}
	return out
}

func validateSpan(what string, s heartbeatpb.TableSpan) error {
	if err := span.Validate(s); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
	}
	return nil
}

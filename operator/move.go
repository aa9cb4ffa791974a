package operator

import (
	"fmt"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// Move hands one span from origin to dest: a one-target handover (handover.go). It stops the
// origin dispatcher, reads its final checkpoint from the Stopped status, then creates the dest
// dispatcher from exactly that ts; its result binds the span to dest, or leaves it absent (from
// the final checkpoint once the origin stopped, else from the last one known), or, when the
// origin refused or never answered its stop, leaves it on the origin.
//
// Phases are the handover's, plus one name: "stopping-only" is stopping once dest is lost (the
// stop goes on only to learn the final checkpoint the span is left absent from).
type Move struct {
	handover
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
	d := heartbeatpb.OperatorDescriptor{
		Id: id, Kind: heartbeatpb.OpMove, Mode: mode,
		Sources:   []heartbeatpb.SpanPlacement{placement(s, origin, from)},
		Targets:   []heartbeatpb.SpanPlacement{placement(s, dest, to)},
		CreatedMs: now.UnixMilli(),
	}
	return &Move{handover: newHandover(d, checkpoint, false)}, nil
}

// Phase names the current phase for status output and the phase timeout.
func (m *Move) Phase() string {
	if m.phase == phaseStopping && m.create.targets[0].state == targetFailed {
		return "stopping-only"
	}
	if m.committing && m.phase == phaseCreating {
		return "committing"
	}
	return m.phase.String()
}

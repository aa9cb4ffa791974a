package operator

import (
	"errors"
	"fmt"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// ErrUnsupported: the descriptor names an operator kind this build cannot rebuild.
var ErrUnsupported = errors.New("operator: cannot restore this operator kind")

// Reported is one dispatcher status a node reported (or that a journal entry proves), fed to a
// restored operator as if it had just arrived in a heartbeat.
type Reported struct {
	Node   string
	Status heartbeatpb.DispatcherStatus
}

// RestoreInput is everything a new maintainer knows about one in-flight operator.
type RestoreInput struct {
	Desc *heartbeatpb.OperatorDescriptor
	// Floor is the ts a span resumes from when nothing better is known: the persisted changefeed
	// checkpoint, which every span's key range has reached (I2).
	Floor uint64
	// Reports are the statuses of the operator's dispatchers, sources before targets.
	Reports []Reported
	// Lost are the nodes of the descriptor that did not answer the bootstrap: dead for it.
	Lost []string
}

// Restore rebuilds an operator from its descriptor through the run path's own code: it is
// constructed from the descriptor as the scheduler would have built it, then every reported
// status goes through OnStatus and every lost node through OnNodeRemoved. Progress is thus
// recomputed from what nodes report ("done when observed"); there is no second state machine.
// The result may already be finished. Its next requests come from Resend.
func Restore(in RestoreInput, now time.Time) (Operator, error) {
	d := in.Desc
	if d == nil {
		return nil, fmt.Errorf("%w: restore: nil descriptor", ErrInvalid)
	}
	op, err := construct(d, in.Floor, now)
	if err != nil {
		return nil, err
	}
	for i := range in.Reports {
		r := &in.Reports[i]
		op.OnStatus(r.Node, &r.Status, now)
	}
	for _, n := range in.Lost {
		op.OnNodeRemoved(n, now)
	}
	return op, nil
}

// construct builds the operator a descriptor describes, in its first phase.
func construct(d *heartbeatpb.OperatorDescriptor, floor uint64, now time.Time) (Operator, error) {
	one := func(what string, ps []heartbeatpb.SpanPlacement) (heartbeatpb.SpanPlacement, error) {
		if len(ps) != 1 {
			return heartbeatpb.SpanPlacement{}, fmt.Errorf("%w: restore %v %d.%d: want one %s, got %d",
				ErrInvalid, d.Kind, d.Id.Epoch, d.Id.Seq, what, len(ps))
		}
		return ps[0], nil
	}
	switch d.Kind {
	case heartbeatpb.OpAdd:
		t, err := one("target", d.Targets)
		if err != nil {
			return nil, err
		}
		a, err := NewAdd(d.Id, t.Span, d.Mode, t.NodeId, t.DispatcherId, d.StartTs, now)
		if err != nil {
			return nil, err
		}
		a.desc.CreatedMs = d.CreatedMs
		return a, nil
	case heartbeatpb.OpRemove:
		s, err := one("source", d.Sources)
		if err != nil {
			return nil, err
		}
		r, err := NewRemove(d.Id, s.Span, d.Mode, s.NodeId, s.DispatcherId, floor, now)
		if err != nil {
			return nil, err
		}
		r.desc.CreatedMs = d.CreatedMs
		return r, nil
	case heartbeatpb.OpMove:
		s, err := one("source", d.Sources)
		if err != nil {
			return nil, err
		}
		t, err := one("target", d.Targets)
		if err != nil {
			return nil, err
		}
		if !spanEqual(s.Span, t.Span) {
			return nil, fmt.Errorf("%w: restore move %d.%d: source and target spans differ", ErrInvalid, d.Id.Epoch, d.Id.Seq)
		}
		m, err := NewMove(d.Id, s.Span, d.Mode, s.NodeId, s.DispatcherId, t.NodeId, t.DispatcherId, floor, now)
		if err != nil {
			return nil, err
		}
		m.desc.CreatedMs = d.CreatedMs
		if d.MakeBeforeBreak {
			m.WithPrepare()
		}
		return m, nil
	}
	return constructMore(d, floor, now)
}

// StartsFromSource reports whether the create halves of kind start from the final checkpoint of
// the source they replace, so that a journaled create proves that source stopped at its start ts.
func StartsFromSource(kind heartbeatpb.OperatorType) bool {
	return kind == heartbeatpb.OpMove || kind == heartbeatpb.OpSplit
}

func spanEqual(a, b heartbeatpb.TableSpan) bool {
	return a.TableId == b.TableId && string(a.StartKey) == string(b.StartKey) && string(a.EndKey) == string(b.EndKey)
}

// constructMore builds the kinds whose constructors take the full descriptor. A Merge gets the
// floor as every source's last known checkpoint; reports raise it.
func constructMore(d *heartbeatpb.OperatorDescriptor, floor uint64, now time.Time) (Operator, error) {
	switch d.Kind {
	case heartbeatpb.OpSplit:
		return NewSplit(*d, floor, now)
	case heartbeatpb.OpMerge:
		cps := make([]uint64, len(d.Sources))
		for i := range cps {
			cps[i] = floor
		}
		return NewMerge(*d, cps, now)
	}
	return nil, fmt.Errorf("%w: %v (operator %d.%d)", ErrUnsupported, d.Kind, d.Id.Epoch, d.Id.Seq)
}

package operator

import (
	"fmt"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// Split replaces one span by k adjacent sub-spans: a handover (handover.go) with k targets. It
// stops the parent dispatcher, reads its final checkpoint from the Stopped status and creates
// every child from exactly that ts. The parent is retired as soon as it stopped: from then on its
// keys belong to the children, each bound when it works or left absent when it failed.
type Split struct {
	handover
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
	return &Split{handover: newHandover(cloneDesc(d), checkpoint, true)}, nil
}

// Phase names the current phase for status output and the phase timeout.
func (s *Split) Phase() string { return s.phase.String() }

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

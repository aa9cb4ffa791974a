package operator

import (
	"errors"
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// TestRestoreThroughRunPath checks that a restored operator is the run path's operator at the
// phase its reports prove, and that its resend continues from there.
func TestRestoreThroughRunPath(t *testing.T) {
	t1 := span.TableSpan(1)
	src := heartbeatpb.DispatcherID{Hi: 4, Lo: 1}
	dst := heartbeatpb.DispatcherID{Hi: 4, Lo: 2}
	move := &heartbeatpb.OperatorDescriptor{Id: heartbeatpb.OperatorID{Epoch: 4, Seq: 9}, Kind: heartbeatpb.OpMove,
		Sources: []heartbeatpb.SpanPlacement{{Span: t1, DispatcherId: src, NodeId: "n1"}},
		Targets: []heartbeatpb.SpanPlacement{{Span: t1, DispatcherId: dst, NodeId: "n2"}}, CreatedMs: 77}
	stopped := Reported{Node: "n1", Status: heartbeatpb.DispatcherStatus{Id: src, Span: t1,
		State: heartbeatpb.StateStopped, CheckpointTs: 170}}
	now := time.Unix(100, 0)

	op, err := Restore(RestoreInput{Desc: move, Floor: 120, Reports: []Reported{stopped}}, now)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := op.(*Move)
	if !ok || m.Phase() != "creating" || m.Descriptor().CreatedMs != 77 {
		t.Fatalf("restored %T in phase %v", op, op.(Phaser).Phase())
	}
	out := op.Resend(now)
	if len(out) != 1 || out[0].Node != "n2" || out[0].Schedule.Config.StartTs != 170 {
		t.Fatalf("resend %+v: want a create on n2 from the final checkpoint 170", out)
	}

	// The destination lost: the Move ends with the span absent from the final checkpoint.
	op, err = Restore(RestoreInput{Desc: move, Floor: 120, Reports: []Reported{stopped}, Lost: []string{"n2"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	res, done := op.Finished()
	if !done || len(res.Absent) != 1 || res.Absent[0].Checkpoint != 170 {
		t.Fatalf("finished=%v result %+v", done, res)
	}

	// Nothing reported about the origin: still stopping, from the floor.
	op, _ = Restore(RestoreInput{Desc: move, Floor: 120}, now)
	if op.(Phaser).Phase() != "stopping" {
		t.Fatalf("phase %s", op.(Phaser).Phase())
	}
}

func TestRestoreRejectsBadDescriptors(t *testing.T) {
	now := time.Unix(100, 0)
	if _, err := Restore(RestoreInput{}, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil descriptor: %v", err)
	}
	d := &heartbeatpb.OperatorDescriptor{Kind: heartbeatpb.OpMove}
	if _, err := Restore(RestoreInput{Desc: d}, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("move without placements: %v", err)
	}
	d = &heartbeatpb.OperatorDescriptor{Kind: heartbeatpb.OpUnknown}
	if _, err := Restore(RestoreInput{Desc: d}, now); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("unknown kind: %v", err)
	}
}

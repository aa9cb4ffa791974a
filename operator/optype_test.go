package operator

import (
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// TestRequestsCarryTypeAndDescriptor drives every kind through each of its phases and checks
// that every request sent carries the operator's type, ID and whole descriptor (acceptance 3).
func TestRequestsCarryTypeAndDescriptor(t *testing.T) {
	whole := span.TableSpan(1)
	halves, err := span.Split(whole, 2)
	if err != nil {
		t.Fatal(err)
	}
	did := func(lo uint64) heartbeatpb.DispatcherID { return heartbeatpb.DispatcherID{Hi: 7, Lo: lo} }
	opID := heartbeatpb.OperatorID{Epoch: 7, Seq: 42}
	st := func(id uint64, state heartbeatpb.ComponentState) *heartbeatpb.DispatcherStatus {
		return &heartbeatpb.DispatcherStatus{Id: did(id), Span: whole, State: state, CheckpointTs: 150}
	}
	working, stopped := heartbeatpb.StateWorking, heartbeatpb.StateStopped
	type report struct {
		node  string
		id    uint64
		state heartbeatpb.ComponentState
	}
	cases := []struct {
		kind    heartbeatpb.OperatorType
		build   func() (Operator, error)
		reports []report // fed in order; each phase's requests are resent too
		tableRm bool     // end with a table removal to reach the cancel phase
	}{
		{heartbeatpb.OpAdd, func() (Operator, error) { return NewAdd(opID, whole, heartbeatpb.ModeRedo, "n2", did(2), 100, t0) },
			nil, true},
		{heartbeatpb.OpRemove, func() (Operator, error) { return NewRemove(opID, whole, 0, "n1", did(1), 100, t0) },
			[]report{{"n1", 1, stopped}}, false},
		{heartbeatpb.OpMove, func() (Operator, error) {
			return NewMove(opID, whole, heartbeatpb.ModeRedo, "n1", did(1), "n2", did(2), 100, t0)
		}, []report{{"n1", 1, stopped}}, true},
		{heartbeatpb.OpSplit, func() (Operator, error) {
			return NewSplit(heartbeatpb.OperatorDescriptor{Id: opID, Kind: heartbeatpb.OpSplit,
				Sources: []heartbeatpb.SpanPlacement{placement(whole, "n1", did(1))},
				Targets: []heartbeatpb.SpanPlacement{placement(halves[0], "n2", did(2)), placement(halves[1], "n3", did(3))}},
				100, t0)
		}, []report{{"n1", 1, stopped}, {"n2", 2, working}}, true},
		{heartbeatpb.OpMerge, func() (Operator, error) {
			return NewMerge(heartbeatpb.OperatorDescriptor{Id: opID, Kind: heartbeatpb.OpMerge, Mode: heartbeatpb.ModeRedo,
				Sources: []heartbeatpb.SpanPlacement{placement(halves[0], "n1", did(1)), placement(halves[1], "n1", did(2))},
				Targets: []heartbeatpb.SpanPlacement{placement(whole, "n1", did(3))}}, []uint64{100, 110}, t0)
		}, []report{{"n1", 1, stopped}, {"n1", 3, working}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.kind.String(), func(t *testing.T) {
			op, err := tc.build()
			if err != nil {
				t.Fatal(err)
			}
			if op.Type() != tc.kind || op.Descriptor().Kind != tc.kind || op.ID() != opID {
				t.Fatalf("type %v, descriptor kind %v, id %v", op.Type(), op.Descriptor().Kind, op.ID())
			}
			var sent []Outgoing
			sent = append(sent, op.Start(t0)...)
			sent = append(sent, op.Resend(t0)...)
			for _, r := range tc.reports {
				sent = append(sent, op.OnStatus(r.node, st(r.id, r.state), t0)...)
				sent = append(sent, op.Resend(t0)...)
			}
			if tc.tableRm {
				sent = append(sent, op.OnTableRemoved(1, t0)...)
				sent = append(sent, op.Resend(t0)...)
			}
			if len(sent) == 0 {
				t.Fatal("no request sent")
			}
			actions := map[heartbeatpb.ScheduleAction]bool{}
			for i, o := range sent {
				desc := o.Merge.GetOperator()
				switch {
				case o.Schedule != nil && o.Merge == nil:
					if o.Schedule.OperatorType != tc.kind {
						t.Fatalf("request %d typed %v, want %v", i, o.Schedule.OperatorType, tc.kind)
					}
					actions[o.Schedule.Action] = true
					desc = o.Schedule.Operator
				case o.Merge != nil && o.Schedule == nil:
					if tc.kind != heartbeatpb.OpMerge || o.Merge.Mode != op.Descriptor().Mode {
						t.Fatalf("request %d: merge request from a %v (mode %v)", i, tc.kind, o.Merge.Mode)
					}
				default:
					t.Fatalf("request %d sets neither or both bodies", i)
				}
				if desc.Id != opID || desc.Kind != tc.kind || !desc.Equal(op.Descriptor()) {
					t.Fatalf("request %d carries descriptor %+v, want %+v", i, desc, op.Descriptor())
				}
			}
			// Both halves of the two-sided kinds are typed as the operator (checked above); make
			// sure both halves were in fact exercised.
			if tc.kind == heartbeatpb.OpMove || tc.kind == heartbeatpb.OpSplit {
				if !actions[heartbeatpb.ActionCreate] || !actions[heartbeatpb.ActionRemove] {
					t.Fatalf("only actions %v were sent", actions)
				}
			}
		})
	}
}

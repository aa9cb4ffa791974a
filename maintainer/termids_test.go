package maintainer

import (
	"testing"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// The counters move past this epoch's IDs wherever an answer names them (statuses, journal
// entries, merges), ignore other epochs, and do not follow a claim no term could reach.
func TestSkipTermIDs(t *testing.T) {
	did := func(hi, lo uint64) heartbeatpb.DispatcherID { return heartbeatpb.DispatcherID{Hi: hi, Lo: lo} }
	oid := func(e, s uint64) heartbeatpb.OperatorID { return heartbeatpb.OperatorID{Epoch: e, Seq: s} }
	cases := []struct {
		name          string
		resp          heartbeatpb.MaintainerBootstrapResponse
		wantOp, wantD uint64
	}{
		{"other epochs", heartbeatpb.MaintainerBootstrapResponse{
			Dispatchers: []heartbeatpb.DispatcherStatus{{Id: did(4, 90)}, {Id: did(6, 90)}},
		}, 0, 0},
		{"status", heartbeatpb.MaintainerBootstrapResponse{
			Dispatchers: []heartbeatpb.DispatcherStatus{{Id: did(5, 7)}, {Id: did(5, 3)}},
		}, 0, 7},
		{"journal", heartbeatpb.MaintainerBootstrapResponse{Operators: []heartbeatpb.InFlightOperator{{
			Request: heartbeatpb.ScheduleDispatcherRequest{
				Operator: heartbeatpb.OperatorDescriptor{Id: oid(5, 11)},
				Config:   heartbeatpb.DispatcherConfig{Id: did(5, 12)},
			}}}}, 11, 12},
		{"merge", heartbeatpb.MaintainerBootstrapResponse{MergeOperators: []heartbeatpb.InFlightMerge{{
			Request: heartbeatpb.MergeDispatcherRequest{
				Operator:  heartbeatpb.OperatorDescriptor{Id: oid(5, 2)},
				SourceIds: []heartbeatpb.DispatcherID{did(5, 20), did(4, 99)},
				MergedId:  did(5, 21),
			}}}}, 2, 21},
		{"out of reach", heartbeatpb.MaintainerBootstrapResponse{
			Dispatchers: []heartbeatpb.DispatcherStatus{{Id: did(5, ^uint64(0))}},
		}, 0, 0},
	}
	for _, c := range cases {
		r := &opRunner{cfg: &Config{Epoch: 5}}
		r.skipTermIDs(map[string]*heartbeatpb.MaintainerBootstrapResponse{"n1": &c.resp}, zap.NewNop())
		if r.nextOperator != c.wantOp || r.nextDispatcher != c.wantD {
			t.Errorf("%s: counters at operator %d, dispatcher %d; want %d, %d", c.name, r.nextOperator, r.nextDispatcher, c.wantOp, c.wantD)
		}
		if got := r.dispatcherID(0); got.Lo <= c.wantD {
			t.Errorf("%s: next dispatcher ID %v is not past %d", c.name, got, c.wantD)
		}
	}
}

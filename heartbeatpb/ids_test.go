package heartbeatpb

import "testing"

func TestIDLess(t *testing.T) {
	dids := []DispatcherID{{Hi: 0, Lo: 0}, {Hi: 0, Lo: 9}, {Hi: 1, Lo: 0}, {Hi: 1, Lo: 5}, {Hi: 2, Lo: 1}}
	for i := range dids {
		for j := range dids {
			if got := dids[i].Less(dids[j]); got != (i < j) {
				t.Errorf("%v.Less(%v) = %v, want %v", dids[i], dids[j], got, i < j)
			}
		}
	}
	oids := []OperatorID{{Epoch: 0, Seq: 3}, {Epoch: 1, Seq: 0}, {Epoch: 1, Seq: 7}, {Epoch: 2, Seq: 1}}
	for i := range oids {
		for j := range oids {
			if got := oids[i].Less(oids[j]); got != (i < j) {
				t.Errorf("%v.Less(%v) = %v, want %v", oids[i], oids[j], got, i < j)
			}
		}
	}
}

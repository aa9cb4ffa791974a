package dispatchermanager

import (
	"errors"
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// A flood of forged higher epochs keeps at most maxHeld envelopes, and the real maintainer's
// request that arrives after it is still stepped once etcd confirms its epoch.
func TestHeldEnvelopesAreBounded(t *testing.T) {
	m, f := newFuzzManager(t)
	now := time.UnixMilli(1_700_000_000_000)
	boot := func(from string, epoch, seq uint64) *heartbeatpb.Envelope {
		return &heartbeatpb.Envelope{ClusterId: "c1", Changefeed: "cf1", From: from, To: "n1", Epoch: epoch,
			Incarnation: epoch, Seq: seq, Body: &heartbeatpb.Envelope_BootstrapRequest{
				BootstrapRequest: &heartbeatpb.MaintainerBootstrapRequest{Config: heartbeatpb.ChangefeedConfig{Id: "cf1"}}}}
	}
	for i := uint64(1); i <= 3*maxHeld; i++ {
		if err := m.Step(boot("m1", 6+i, i), now); !errors.Is(err, ErrHeld) {
			t.Fatalf("forged epoch %d: got %v, want ErrHeld", 6+i, err)
		}
	}
	if len(m.gate.held) != maxHeld || m.gate.dropped != 2*maxHeld {
		t.Fatalf("held %d dropped %d, want %d and %d", len(m.gate.held), m.gate.dropped, maxHeld, 2*maxHeld)
	}
	if err := m.Step(boot("n1", 1000, 1), now); !errors.Is(err, ErrHeld) {
		t.Fatalf("real request: got %v, want ErrHeld", err)
	}
	if snap := m.Snapshot(); snap.Epoch != 5 || snap.Bootstrapped || f.flushes != 0 {
		t.Fatalf("held envelopes took effect: %+v, %d flushes", snap, f.flushes)
	}
	if err := m.SetEpoch(1000, "n1", now); err != nil {
		t.Fatal(err)
	}
	if snap := m.Snapshot(); snap.Epoch != 1000 || snap.Maintainer != "n1" || !snap.Bootstrapped {
		t.Fatalf("confirmed request not stepped: %+v", snap)
	}
	if len(m.gate.held) != 0 {
		t.Fatalf("%d envelopes still held after etcd confirmed a higher epoch", len(m.gate.held))
	}
}

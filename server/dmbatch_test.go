package server

import (
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// TestDropSupersededBootstraps: of the bootstrap requests one maintainer term queued, only the
// last is stepped; other terms' requests and every other envelope keep their order.
func TestDropSupersededBootstraps(t *testing.T) {
	boot := func(from string, epoch, seq uint64) *heartbeatpb.Envelope {
		return &heartbeatpb.Envelope{From: from, Epoch: epoch, Seq: seq,
			Body: &heartbeatpb.Envelope_BootstrapRequest{BootstrapRequest: &heartbeatpb.MaintainerBootstrapRequest{}}}
	}
	sched := func(from string, epoch, seq uint64) *heartbeatpb.Envelope {
		return &heartbeatpb.Envelope{From: from, Epoch: epoch, Seq: seq,
			Body: &heartbeatpb.Envelope_Schedule{Schedule: &heartbeatpb.ScheduleDispatcherRequests{}}}
	}
	batch := []*heartbeatpb.Envelope{boot("n1", 5, 1), boot("n2", 6, 1), boot("n1", 5, 2), sched("n1", 5, 3),
		boot("n1", 5, 4), boot("n1", 7, 1)}
	got := dropSupersededBootstraps(append([]*heartbeatpb.Envelope(nil), batch...))
	want := []*heartbeatpb.Envelope{batch[1], batch[3], batch[4], batch[5]}
	if len(got) != len(want) {
		t.Fatalf("kept %d envelopes, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("envelope %d: from %s epoch %d seq %d, want seq %d", i, got[i].From, got[i].Epoch, got[i].Seq, want[i].Seq)
		}
	}
	// Nothing to drop: the batch comes back as it was.
	plain := []*heartbeatpb.Envelope{sched("n1", 5, 1), boot("n1", 5, 2)}
	if got := dropSupersededBootstraps(plain); len(got) != 2 || got[0] != plain[0] || got[1] != plain[1] {
		t.Fatalf("batch without superseded requests changed: %v", got)
	}
}

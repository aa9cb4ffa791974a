package bootstrap

import (
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// TestIDFilter checks the filter's contract: every ID it was built from may be held, and IDs it
// was not built from are mostly refused (about 1 in 32 may pass; the restore then asks the map).
func TestIDFilter(t *testing.T) {
	if (idFilter{}).mayHold(heartbeatpb.DispatcherID{Hi: 1, Lo: 1}) {
		t.Fatal("the zero filter holds an ID")
	}
	if newIDFilter(map[heartbeatpb.DispatcherID]bool{}).mayHold(heartbeatpb.DispatcherID{}) {
		t.Fatal("a filter of no IDs holds one")
	}
	// Named IDs as a restore sees them: a few epochs, sequence numbers, some far apart.
	named := make(map[heartbeatpb.DispatcherID]bool)
	for lo := uint64(1); lo <= 20_000; lo++ {
		named[heartbeatpb.DispatcherID{Hi: 8 + lo%3, Lo: lo * 97}] = true
	}
	f := newIDFilter(named)
	for id := range named {
		if !f.mayHold(id) {
			t.Fatalf("the filter refuses %v, which it was built from", id)
		}
	}
	passed, tried := 0, 0
	for hi := uint64(7); hi <= 10; hi++ {
		for lo := uint64(0); lo < 500_000; lo++ {
			id := heartbeatpb.DispatcherID{Hi: hi, Lo: lo}
			if named[id] {
				continue
			}
			tried++
			if f.mayHold(id) {
				passed++
			}
		}
	}
	if rate := float64(passed) / float64(tried); rate > 1.0/16 {
		t.Fatalf("%d of %d IDs not built from pass (%.3f): the filter barely filters", passed, tried, rate)
	}
}

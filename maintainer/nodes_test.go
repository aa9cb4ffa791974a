package maintainer

import (
	"testing"
	"time"
)

// TestBootstrapResendBackoff: an unanswered bootstrap request is resent after 1, 2, 4 and then
// every 4 resend intervals, not every interval: each one carries the whole table list.
func TestBootstrapResendBackoff(t *testing.T) {
	ns := newNodeSet()
	start := time.Unix(1000, 0)
	ns.live["n1"] = &nodeInfo{state: nodeBootstrapping, sentAt: start, joined: start}
	ns.live["n2"] = &nodeInfo{state: nodeReady, sentAt: start, joined: start}
	var sent []int
	for s := 1; s <= 20; s++ {
		for _, id := range ns.resendDue(start.Add(time.Duration(s)*time.Second), time.Second) {
			if id != "n1" {
				t.Fatalf("second %d: resent to %s, which answered", s, id)
			}
			sent = append(sent, s)
		}
	}
	want := []int{1, 3, 7, 11, 15, 19}
	if len(sent) != len(want) {
		t.Fatalf("resent at seconds %v, want %v", sent, want)
	}
	for i := range want {
		if sent[i] != want[i] {
			t.Fatalf("resent at seconds %v, want %v", sent, want)
		}
	}
}

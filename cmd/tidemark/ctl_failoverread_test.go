package main

import (
	"testing"
	"time"
)

// TestCtlReadsThroughFailover: while the maintainer stops, `ctl spans` and `ctl
// operators` still answer (exit 0), from the successor once it has taken over, instead of
// failing with "no maintainer", "taking it over; retry" or an unreachable old maintainer.
func TestCtlReadsThroughFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster through two maintainer changes")
	}
	c := startAcceptCluster(t)
	c.ctl(exitOK, "changefeed", "create", "demo", "--tables", "1-10")
	st := c.settled(10)
	stopped := map[string]bool{}
	for round := range 2 {
		maint := demoStatus(t, st).Maintainer.Node
		idx := map[string]int{"n1": 0, "n2": 1, "n3": 2}[maint]
		start := time.Now()
		stopped[maint] = true
		done := make(chan struct{})
		go func() { defer close(done); c.stops[idx]() }() // ctl asks while the maintainer goes
		out := c.spans("--timeout", "30s")
		<-done
		if len(out.Spans) != 10 {
			t.Fatalf("round %d: ctl spans right after %s stopped: %d spans, want 10", round, maint, len(out.Spans))
		}
		c.ctl(exitOK, "operators", "--changefeed", "demo", "--timeout", "30s")
		t.Logf("round %d: %s stopped; ctl spans and operators answered %v later", round, maint, time.Since(start).Round(time.Millisecond))
		c.waitFor("a live maintainer in the status", 30*time.Second, func() bool {
			c.ctlJSON(&st, "status")
			return !stopped[demoStatus(t, st).Maintainer.Node]
		})
	}
}

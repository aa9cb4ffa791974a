package operator

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// A phase with no answer is rolled back once, PhaseTimeout after it began; progress restarts
// the count; the rollback is logged with the operator and counted.
func TestControllerPhaseTimeout(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	c := NewController(ControllerConfig{ResendInterval: time.Second, PhaseTimeout: 10 * time.Second,
		StuckAfter: time.Hour, Logger: zap.New(core)})
	quiet := newTestAdd(t, 1, 1, "n1", t0)   // its node never answers
	talking := newTestAdd(t, 2, 2, "n2", t0) // answers, but only after 9 s
	for _, op := range []Operator{quiet, talking} {
		if _, err := c.Add(op, t0); err != nil {
			t.Fatal(err)
		}
	}
	var cancels []Outgoing
	for s := 1; s <= 9; s++ {
		cancels = append(cancels, removesIn(c.Tick(t0.Add(time.Duration(s)*time.Second)))...)
	}
	if len(cancels) != 0 || quiet.Phase() != "creating" {
		t.Fatalf("rolled back before the timeout: %v, phase %s", cancels, quiet.Phase())
	}
	c.OnStatus("n2", working(2, 2, 150), t0.Add(9*time.Second)) // talking finishes
	cancels = removesIn(c.Tick(t0.Add(10 * time.Second)))
	if len(cancels) != 1 || cancels[0].Node != "n1" || quiet.Phase() != "canceling" {
		t.Fatalf("at the timeout: cancels %v, phase %s; want one Remove to n1, canceling", cancels, quiet.Phase())
	}
	// Once only: the canceling phase is resent, never aborted again.
	for s := 11; s <= 40; s++ {
		c.Tick(t0.Add(time.Duration(s) * time.Second))
	}
	if got := c.TimedOut()[heartbeatpb.OpAdd]; got != 1 {
		t.Fatalf("timed out = %d, want 1", got)
	}
	warn := logs.FilterMessage("operator phase timed out; rolling back").All()
	if len(warn) != 1 || warn[0].ContextMap()["phase"] != "creating" {
		t.Fatalf("rollback log lines = %v", warn)
	}
	// The node answers the cancel: the span is absent at the start ts.
	gone := working(1, 1, 0)
	gone.State = heartbeatpb.StateRemoved
	c.OnStatus("n1", gone, t0.Add(41*time.Second))
	fin := c.TakeFinished()
	if len(fin) != 2 || fin[1].Result.Outcome != OutcomeAborted || len(fin[1].Result.Absent) != 1 ||
		fin[1].Result.Absent[0].Checkpoint != 100 {
		t.Fatalf("finished = %+v", fin)
	}
}

func removesIn(out []Outgoing) []Outgoing {
	var rs []Outgoing
	for _, o := range out {
		if o.Schedule != nil && o.Schedule.Action == heartbeatpb.ActionRemove {
			rs = append(rs, o)
		}
	}
	return rs
}

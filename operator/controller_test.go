package operator

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

func newTestAdd(t testing.TB, seq uint64, table int64, dest string, now time.Time) *Add {
	t.Helper()
	op, err := NewAdd(heartbeatpb.OperatorID{Epoch: 1, Seq: seq}, span.TableSpan(table), heartbeatpb.ModeDefault,
		dest, heartbeatpb.DispatcherID{Hi: 1, Lo: seq}, 100, now)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

func working(seq uint64, table int64, cp uint64) *heartbeatpb.DispatcherStatus {
	return &heartbeatpb.DispatcherStatus{Id: heartbeatpb.DispatcherID{Hi: 1, Lo: seq}, Span: span.TableSpan(table),
		State: heartbeatpb.StateWorking, CheckpointTs: cp}
}

func TestControllerSpanBusyAndLimits(t *testing.T) {
	c := NewController(ControllerConfig{MaxPerNode: 2, MaxTotal: 3})
	if _, err := c.Add(newTestAdd(t, 1, 1, "n1", t0), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add(newTestAdd(t, 2, 1, "n2", t0), t0); !errors.Is(err, ErrSpanBusy) {
		t.Fatalf("same span twice: got %v, want ErrSpanBusy", err)
	}
	sameDispatcher, _ := NewRemove(heartbeatpb.OperatorID{Epoch: 1, Seq: 9}, span.TableSpan(8), heartbeatpb.ModeDefault,
		"n1", heartbeatpb.DispatcherID{Hi: 1, Lo: 1}, 100, t0)
	if _, err := c.Add(sameDispatcher, t0); !errors.Is(err, ErrSpanBusy) {
		t.Fatalf("same dispatcher twice: got %v, want ErrSpanBusy", err)
	}
	if _, err := c.Add(newTestAdd(t, 1, 5, "n2", t0), t0); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("same id twice: got %v, want ErrDuplicate", err)
	}
	if _, err := c.Add(newTestAdd(t, 3, 2, "n1", t0), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add(newTestAdd(t, 4, 3, "n1", t0), t0); !errors.Is(err, ErrLimit) {
		t.Fatalf("third on n1: got %v, want ErrLimit", err)
	}
	if _, err := c.Add(newTestAdd(t, 5, 4, "n2", t0), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add(newTestAdd(t, 6, 6, "n3", t0), t0); !errors.Is(err, ErrLimit) {
		t.Fatalf("fourth overall: got %v, want ErrLimit", err)
	}
	if got := c.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3", got)
	}
	if got := c.Free("n1"); got != 0 {
		t.Fatalf("Free(n1) = %d, want 0", got)
	}
}

func TestControllerRoutesStatusesAndRetires(t *testing.T) {
	c := NewController(ControllerConfig{})
	if _, err := c.Add(newTestAdd(t, 1, 1, "n1", t0), t0); err != nil {
		t.Fatal(err)
	}
	if _, owned := c.OnStatus("n1", working(9, 1, 1), t0); owned {
		t.Fatal("status of an unknown dispatcher was routed")
	}
	if _, owned := c.OnStatus("n1", working(1, 1, 150), t0); !owned {
		t.Fatal("status of the add's dispatcher was not routed")
	}
	fin := c.TakeFinished()
	if len(fin) != 1 || fin[0].Result.Outcome != OutcomeSucceeded || fin[0].Result.Bind[0].Checkpoint != 150 {
		t.Fatalf("finished = %+v", fin)
	}
	if c.Len() != 0 || c.InFlight("n1") != 0 {
		t.Fatalf("retired operator still counted: len %d, n1 %d", c.Len(), c.InFlight("n1"))
	}
	if _, busy := c.BySpan(RefOf(span.TableSpan(1), heartbeatpb.ModeDefault)); busy {
		t.Fatal("span still locked after finish")
	}
	if _, err := c.Add(newTestAdd(t, 2, 1, "n1", t0), t0); err != nil {
		t.Fatalf("span not reusable after finish: %v", err)
	}
	if got := c.Counters()[CounterKey{Kind: heartbeatpb.OpAdd, Outcome: OutcomeSucceeded}]; got != 1 {
		t.Fatalf("succeeded adds = %d, want 1", got)
	}
}

func TestControllerResendThrottleAndOrder(t *testing.T) {
	c := NewController(ControllerConfig{ResendInterval: time.Second})
	for i := uint64(1); i <= 3; i++ {
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		if _, err := c.Add(newTestAdd(t, i, int64(i), "n1", at), at); err != nil {
			t.Fatal(err)
		}
	}
	if out := c.Tick(t0.Add(1000 * time.Millisecond)); len(out) != 0 {
		t.Fatalf("resent before due: %d", len(out))
	}
	out := c.Tick(t0.Add(1200 * time.Millisecond))
	if len(out) != 2 || out[0].Schedule.Config.Id.Lo != 1 || out[1].Schedule.Config.Id.Lo != 2 {
		t.Fatalf("due resends = %+v, want ops 1 and 2 in order", out)
	}
	if out := c.Tick(t0.Add(1300 * time.Millisecond)); len(out) != 1 {
		t.Fatalf("op 3 resends = %d, want 1", len(out))
	}
	if out := c.Tick(t0.Add(1300 * time.Millisecond)); len(out) != 0 {
		t.Fatalf("resent twice in one interval: %d", len(out))
	}
}

func TestControllerNodeRemovedAndRejection(t *testing.T) {
	c := NewController(ControllerConfig{})
	for i := uint64(1); i <= 4; i++ {
		node := "n1"
		if i%2 == 0 {
			node = "n2"
		}
		if _, err := c.Add(newTestAdd(t, i, int64(i), node, t0), t0); err != nil {
			t.Fatal(err)
		}
	}
	c.OnNodeRemoved("n2", t0)
	fin := c.TakeFinished()
	if len(fin) != 2 || fin[0].Op.ID().Seq != 2 || fin[1].Op.ID().Seq != 4 {
		t.Fatalf("finished after n2 left = %v", fin)
	}
	for _, f := range fin {
		if f.Result.Outcome != OutcomeAborted || len(f.Result.Absent) != 1 || f.Result.Absent[0].Checkpoint != 100 {
			t.Fatalf("result = %+v", f.Result)
		}
	}
	c.OnRejection("n1", &heartbeatpb.RequestRejection{OperatorId: heartbeatpb.OperatorID{Epoch: 1, Seq: 3}}, t0)
	if fin := c.TakeFinished(); len(fin) != 1 || fin[0].Op.ID().Seq != 3 {
		t.Fatalf("finished after rejection = %v", fin)
	}
	c.OnRejection("n1", &heartbeatpb.RequestRejection{OperatorId: heartbeatpb.OperatorID{Epoch: 1, Seq: 99}}, t0)
	c.OnRejection("n1", nil, t0)
	c.OnTableRemoved(1, t0)
	list := c.List(t0.Add(time.Second))
	if len(list) != 1 || list[0].Phase != "canceling" || list[0].Age != time.Second {
		t.Fatalf("list = %+v", list)
	}
}

// BenchmarkControllerStatus applies one Working report per operator with 100,000 operators in
// flight, the way a burst of heartbeats would.
func BenchmarkControllerStatus(b *testing.B) {
	const n = 100_000
	statuses := make([]*heartbeatpb.DispatcherStatus, n)
	for i := range statuses {
		statuses[i] = working(uint64(i+1), int64(i+1), 150)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		c := NewController(ControllerConfig{MaxPerNode: n, MaxTotal: n})
		for i := 0; i < n; i++ {
			node := "n" + string(rune('0'+i%10))
			if _, err := c.Add(newTestAdd(b, uint64(i+1), int64(i+1), node, t0), t0); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for i, st := range statuses {
			node := "n" + string(rune('0'+i%10))
			c.OnStatus(node, st, t0)
		}
		if got := len(c.TakeFinished()); got != n {
			b.Fatalf("finished %d, want %d", got, n)
		}
	}
}

func TestControllerWarnsAboutStuckOperators(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	c := NewController(ControllerConfig{ResendInterval: time.Second, StuckAfter: 3 * time.Second, Logger: zap.New(core)})
	if _, err := c.Add(newTestAdd(t, 1, 1, "n1", t0), t0); err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= 7; s++ {
		c.Tick(t0.Add(time.Duration(s) * time.Second))
	}
	// Warned at 3s and again at 6s: once per StuckAfter, not on every resend.
	stuck := logs.FilterMessage("operator stuck").All()
	if len(stuck) != 2 {
		t.Fatalf("stuck warnings = %d, want 2", len(stuck))
	}
	if got := stuck[0].ContextMap()["phase"]; got != "creating" {
		t.Fatalf("phase field = %v", got)
	}
}

// BenchmarkControllerStatusInFlight routes 100,000 Working reports to 100,000 in-flight Removes
// that stay in flight: the steady-state cost of heartbeats while operators wait.
func BenchmarkControllerStatusInFlight(b *testing.B) {
	const n = 100_000
	c := NewController(ControllerConfig{MaxPerNode: n, MaxTotal: n})
	statuses := make([]*heartbeatpb.DispatcherStatus, n)
	for i := 0; i < n; i++ {
		seq := uint64(i + 1)
		op, err := NewRemove(heartbeatpb.OperatorID{Epoch: 1, Seq: seq}, span.TableSpan(int64(seq)), heartbeatpb.ModeDefault,
			"n1", heartbeatpb.DispatcherID{Hi: 1, Lo: seq}, 100, t0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Add(op, t0); err != nil {
			b.Fatal(err)
		}
		statuses[i] = working(seq, int64(seq), 150)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, st := range statuses {
			c.OnStatus("n1", st, t0)
		}
	}
	if c.Len() != n {
		b.Fatalf("in flight %d, want %d", c.Len(), n)
	}
}

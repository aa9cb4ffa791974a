package operator

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// report is one status a node sends, as a benchmark replays it.
type report struct {
	node string
	st   *heartbeatpb.DispatcherStatus
}

// mixedOps builds n operators, a fifth of each kind, on ten nodes, plus the reports that take
// every one of them through all its phases to the end (in a realistic order: each operator's
// reports are interleaved with the other operators').
func mixedOps(b *testing.B, n int) ([]Operator, [][]report) {
	b.Helper()
	ops := make([]Operator, 0, n)
	phases := make([][]report, 4) // phase i: the i-th report of every operator that has one
	did := uint64(0)
	next := func() heartbeatpb.DispatcherID { did++; return heartbeatpb.DispatcherID{Hi: 1, Lo: did} }
	st := func(id heartbeatpb.DispatcherID, s heartbeatpb.TableSpan, state heartbeatpb.ComponentState) *heartbeatpb.DispatcherStatus {
		return &heartbeatpb.DispatcherStatus{Id: id, Span: s, State: state, CheckpointTs: 150, Load: 10}
	}
	working, stopped := heartbeatpb.StateWorking, heartbeatpb.StateStopped
	for i := 0; i < n; i++ {
		id := heartbeatpb.OperatorID{Epoch: 1, Seq: uint64(i + 1)}
		whole := span.TableSpan(int64(i + 1))
		halves, err := span.Split(whole, 2)
		if err != nil {
			b.Fatal(err)
		}
		a, c := fmt.Sprintf("n%d", i%10), fmt.Sprintf("n%d", (i+1)%10)
		var op Operator
		var rs []report
		switch i % 5 {
		case 0:
			d := next()
			op, err = NewAdd(id, whole, 0, a, d, 100, t0)
			rs = []report{{a, st(d, whole, working)}}
		case 1:
			d := next()
			op, err = NewRemove(id, whole, 0, a, d, 100, t0)
			rs = []report{{a, st(d, whole, working)}, {a, st(d, whole, stopped)}}
		case 2:
			from, to := next(), next()
			op, err = NewMove(id, whole, 0, a, from, c, to, 100, t0)
			rs = []report{{a, st(from, whole, stopped)}, {c, st(to, whole, working)}}
		case 3:
			p, x, y := next(), next(), next()
			op, err = NewSplit(heartbeatpb.OperatorDescriptor{Id: id, Kind: heartbeatpb.OpSplit,
				Sources: []heartbeatpb.SpanPlacement{{Span: whole, NodeId: a, DispatcherId: p}},
				Targets: []heartbeatpb.SpanPlacement{{Span: halves[0], NodeId: a, DispatcherId: x},
					{Span: halves[1], NodeId: c, DispatcherId: y}}}, 100, t0)
			rs = []report{{a, st(p, whole, stopped)}, {a, st(x, halves[0], working)}, {c, st(y, halves[1], working)}}
		case 4:
			x, y, mid := next(), next(), next()
			op, err = NewMerge(heartbeatpb.OperatorDescriptor{Id: id, Kind: heartbeatpb.OpMerge,
				Sources: []heartbeatpb.SpanPlacement{{Span: halves[0], NodeId: a, DispatcherId: x},
					{Span: halves[1], NodeId: a, DispatcherId: y}},
				Targets: []heartbeatpb.SpanPlacement{{Span: whole, NodeId: a, DispatcherId: mid}}}, nil, t0)
			rs = []report{{a, st(x, halves[0], stopped)}, {a, st(y, halves[1], stopped)}, {a, st(mid, whole, working)}}
		}
		if err != nil {
			b.Fatal(err)
		}
		ops = append(ops, op)
		for j, r := range rs {
			phases[j] = append(phases[j], r)
		}
	}
	return ops, phases
}

// BenchmarkControllerReports: the controller applying status reports with 100,000 operators of
// all five kinds in flight, each report routed to its operator and most of them moving it on
// (second halves sent, results applied); every operator finishes by the last report. Reported as
// reports/s; the target is at least 200,000.
func BenchmarkControllerReports(b *testing.B) {
	const n = 100_000
	b.ReportAllocs()
	reports := 0
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		ops, phases := mixedOps(b, n)
		c := NewController(ControllerConfig{MaxPerNode: n, MaxTotal: n})
		for _, op := range ops {
			if _, err := c.Add(op, t0); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		b.StartTimer()
		start := time.Now()
		finished := 0
		for _, phase := range phases {
			for _, r := range phase {
				c.OnStatus(r.node, r.st, t0)
				// As the maintainer does: apply what finished before the next report.
				finished += len(c.TakeFinished())
				reports++
			}
		}
		elapsed += time.Since(start)
		if got := finished; got != n || c.Len() != 0 {
			b.Fatalf("finished %d, in flight %d", got, c.Len())
		}
	}
	b.ReportMetric(float64(reports)/elapsed.Seconds(), "reports/s")
}

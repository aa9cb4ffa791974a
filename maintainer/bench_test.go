package maintainer

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

const benchSpans = 1_000_000

// BenchmarkPlaceAbsent is the pure basic scheduler placing 1,000,000 absent spans on 10 nodes
// in a single unbounded round: the worst case of one round.
func BenchmarkPlaceAbsent(b *testing.B) {
	absent := make([]spanID, benchSpans)
	for i := range absent {
		absent[i] = spanID(i)
	}
	nodes := make([]nodeLoad, 10)
	for i := range nodes {
		nodes[i] = nodeLoad{node: fmt.Sprintf("n%02d", i), spans: i * 1000, free: benchSpans}
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := len(placeAbsent(absent, nodes, benchSpans, nil)); got != benchSpans {
			b.Fatalf("placed %d", got)
		}
	}
}

// newBenchMaintainer returns a bootstrapped maintainer holding 1,000,000 absent spans and 10
// ready nodes, with limits high enough that rounds never stall.
func newBenchMaintainer(b *testing.B) *Maintainer {
	b.Helper()
	cfg := Config{ClusterID: "c", Changefeed: "cf", SelfNode: "n00", Epoch: 9,
		ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf", StartTs: 100},
		MaxOperators:     benchSpans, MaxOperatorsPerNode: benchSpans}
	cfg.ChangefeedConfig.Tables = make([]heartbeatpb.TableConfig, benchSpans)
	for i := range cfg.ChangefeedConfig.Tables {
		cfg.ChangefeedConfig.Tables[i].TableId = int64(i + 1)
	}
	var nodes []string
	for i := 0; i < 10; i++ {
		nodes = append(nodes, fmt.Sprintf("n%02d", i))
	}
	// No node answers yet, so bootstrap waits and New places nothing.
	m, err := New(cfg, nodes, t0)
	if err != nil {
		b.Fatal(err)
	}
	for i, n := range nodes {
		env := &heartbeatpb.Envelope{ClusterId: "c", Changefeed: "cf", From: n, To: "n00", Epoch: 9,
			Incarnation: 1, Seq: 1, Body: &heartbeatpb.Envelope_BootstrapResponse{
				BootstrapResponse: &heartbeatpb.MaintainerBootstrapResponse{}}}
		if i == len(nodes)-1 {
			// The last answer completes bootstrap, which runs a first round; undo its effect on
			// the measurement by starting the clock only afterwards.
			m.cfg.ScheduleBatch = 1
		}
		if err := m.Step(env, t0); err != nil {
			b.Fatal(err)
		}
	}
	m.cfg.ScheduleBatch = defaultScheduleBatch
	m.Ready()
	m.Advance()
	return m
}

// BenchmarkSchedulerRound is one Tick of a maintainer holding 1,000,000 spans on 10 nodes: a
// basic-scheduler round placing the default batch of 10000 Adds, plus the checkpoint scan.
func BenchmarkSchedulerRound(b *testing.B) {
	m := newBenchMaintainer(b)
	now := t0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if m.db.counts[stateAbsent] < defaultScheduleBatch {
			b.StopTimer()
			m = newBenchMaintainer(b)
			b.StartTimer()
		}
		now = now.Add(time.Millisecond)
		before := m.ctl.Len()
		m.Tick(now)
		if got := m.ctl.Len() - before; got != defaultScheduleBatch {
			b.Fatalf("round placed %d, want %d", got, defaultScheduleBatch)
		}
		m.Ready()
		m.Advance()
	}
}

// newBalanceBench returns a bootstrapped maintainer whose 1,000,000 spans all replicate, with
// the first node holding twice its share, so a balance round has moves to plan. With redo, the
// spans are 500,000 key ranges in both modes, twins on the same node.
func newBalanceBench(b *testing.B, redo bool) *Maintainer {
	b.Helper()
	cfg := Config{ClusterID: "c", Changefeed: "cf", SelfNode: "n00", Epoch: 9,
		ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf", StartTs: 100, Redo: redo},
		MaxOperators:     benchSpans, MaxOperatorsPerNode: benchSpans}
	var nodes []string
	for i := 0; i < 10; i++ {
		nodes = append(nodes, fmt.Sprintf("n%02d", i))
	}
	m, err := New(cfg, nodes, t0)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range nodes {
		m.nodes.get(n).state = nodeReady
	}
	m.bootstrapped = true
	m.db.reset(benchSpans)
	for i := 0; i < benchSpans; i++ {
		table, mode := int64(i+1), heartbeatpb.ModeDefault
		if redo {
			table = int64(i/2 + 1)
			if i%2 == 1 {
				mode = heartbeatpb.ModeRedo
			}
		}
		node := fmt.Sprintf("n%02d", (i/2)%11) // n10 is n00 again: n00 holds two shares
		if node == "n10" {
			node = "n00"
		}
		m.db.insertReplicating(span.TableSpan(table), mode, node, heartbeatpb.DispatcherID{Hi: 8, Lo: uint64(i + 1)}, 100)
	}
	return m
}

// BenchmarkBalanceRound is one round of the balance scheduler over 1,000,000 replicating spans
// on 10 nodes: per-mode counts, the plan, and picking the ScheduleBatch spans to move (the
// Moves are started, so each iteration gets a fresh, unbalanced DB outside the timer).
func BenchmarkBalanceRound(b *testing.B) {
	for _, redo := range []bool{false, true} {
		b.Run(fmt.Sprintf("redo=%v", redo), func(b *testing.B) {
			b.ReportAllocs()
			now := t0
			for b.Loop() {
				b.StopTimer()
				m := newBalanceBench(b, redo)
				runtime.GC() // the previous iteration's DB is garbage: collect it outside the timer
				b.StartTimer()
				now = now.Add(time.Millisecond)
				balance(m.view(), m.ops, now)
				if got := m.ctl.Len(); got != defaultScheduleBatch {
					b.Fatalf("round started %d moves, want %d", got, defaultScheduleBatch)
				}
			}
		})
	}
}

// BenchmarkWatermarkSweep times one matching heartbeat's pass over a node serving 333,000 spans
// (a third of a million-span changefeed): every span's dispatcher looked up in the mirror and
// advanced to the watermark.
func BenchmarkWatermarkSweep(b *testing.B) {
	const n = 333_000
	db := newSpanDB(n)
	states := make(map[heartbeatpb.DispatcherID]heartbeatpb.ComponentState, n)
	statuses := make([]heartbeatpb.DispatcherStatus, 0, n)
	var first spanID
	for i := 1; i <= n; i++ {
		d := heartbeatpb.DispatcherID{Hi: 1, Lo: uint64(i)}
		sid := db.insertReplicating(span.TableSpan(int64(i)), heartbeatpb.ModeDefault, "n1", d, 100)
		if i == 1 {
			first = sid
		}
		states[d] = heartbeatpb.StateWorking
		statuses = append(statuses, heartbeatpb.DispatcherStatus{Id: d, Span: span.TableSpan(int64(i)), State: heartbeatpb.StateWorking})
	}
	ms := nodeMirrors{}
	ms.reset("n1", statuses)
	beat := watermarkBeat(db, ms, digestOf(states), first)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at := time.Duration(i+1) * time.Hour // past every sweep interval
		if got := beat(at, uint64(200+i)); got != uint64(200+i) {
			b.Fatalf("sweep %d: checkpoint %d", i, got)
		}
	}
}

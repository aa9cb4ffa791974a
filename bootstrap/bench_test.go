package bootstrap_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/maintainer"
	"github.com/tidemark/tidemark/span"
)

const (
	benchNodes     = 10
	benchInFlight  = 10_000
	benchCluster   = "c1"
	benchFeed      = "cf"
	benchSelf      = "n00"
	benchEpoch     = 9
	benchOldEpoch  = 8
	benchCheckpont = 1_000
)

// benchShape is how the 1,000,000 spans of a benchmark are laid out: a few big tables split in
// many pieces, or a changefeed of a million one-span tables (#12: TiCDC's target), where
// whatever a restore keeps per table, not per span, is what shows.
type benchShape struct {
	name             string
	tables, perTable int
}

var benchShapes = []benchShape{{"Spans", 100, 10_000}, {"Tables", 1_000_000, 1}}

// benchResponses builds the encoded bootstrap answers of 10 nodes holding 1,000,000 spans, with
// 10,000 Moves in flight spread over their phases: a third stopping (origin working, remove
// accepted), a third creating (origin stopped with its final checkpoint, create journaled on
// the destination), a third done but not acknowledged (destination working).
func benchResponses(b *testing.B, shape benchShape) (*heartbeatpb.ChangefeedConfig, [][]byte, int) {
	cfg := &heartbeatpb.ChangefeedConfig{Id: benchFeed, StartTs: 100}
	resps := make([]*heartbeatpb.MaintainerBootstrapResponse, benchNodes)
	for i := range resps {
		resps[i] = &heartbeatpb.MaintainerBootstrapResponse{CheckpointTs: benchCheckpont}
	}
	var seq uint64
	moves, running := 0, 0
	total := shape.tables * shape.perTable
	for t := int64(1); t <= int64(shape.tables); t++ {
		cfg.Tables = append(cfg.Tables, heartbeatpb.TableConfig{TableId: t})
		pieces := []heartbeatpb.TableSpan{span.TableSpan(t)}
		if shape.perTable > 1 {
			var err error
			if pieces, err = span.Split(pieces[0], shape.perTable); err != nil {
				b.Fatal(err)
			}
		}
		for _, s := range pieces {
			seq++
			origin := int(seq) % benchNodes
			id := heartbeatpb.DispatcherID{Hi: benchOldEpoch, Lo: seq}
			st := heartbeatpb.DispatcherStatus{Id: id, Span: s, State: heartbeatpb.StateWorking, CheckpointTs: 2_000}
			if int(seq)%(total/benchInFlight) != 0 || moves == benchInFlight {
				resps[origin].Dispatchers = append(resps[origin].Dispatchers, st)
				continue
			}
			moves++
			dest := (origin + 1) % benchNodes
			to := heartbeatpb.DispatcherID{Hi: benchOldEpoch, Lo: 10_000_000 + seq}
			desc := heartbeatpb.OperatorDescriptor{Id: heartbeatpb.OperatorID{Epoch: benchOldEpoch, Seq: seq},
				Kind:    heartbeatpb.OpMove,
				Sources: []heartbeatpb.SpanPlacement{{Span: s, DispatcherId: id, NodeId: nodeName(origin)}},
				Targets: []heartbeatpb.SpanPlacement{{Span: s, DispatcherId: to, NodeId: nodeName(dest)}}}
			remove := heartbeatpb.InFlightOperator{Request: heartbeatpb.ScheduleDispatcherRequest{
				Config: heartbeatpb.DispatcherConfig{Id: id, Span: s}, Action: heartbeatpb.ActionRemove,
				OperatorType: heartbeatpb.OpMove, Operator: desc}}
			create := heartbeatpb.InFlightOperator{Request: heartbeatpb.ScheduleDispatcherRequest{
				Config: heartbeatpb.DispatcherConfig{Id: to, Span: s, StartTs: 2_000}, Action: heartbeatpb.ActionCreate,
				OperatorType: heartbeatpb.OpMove, Operator: desc}}
			if moves%3 != 2 {
				running++
			}
			switch moves % 3 {
			case 0: // stopping
				resps[origin].Dispatchers = append(resps[origin].Dispatchers, st)
				resps[origin].Operators = append(resps[origin].Operators, remove)
			case 1, 2: // creating, or done when the destination works
				st.State = heartbeatpb.StateStopped
				remove.Stage, remove.FinalCheckpointTs = heartbeatpb.StageApplied, 2_000
				resps[origin].Dispatchers = append(resps[origin].Dispatchers, st)
				resps[origin].Operators = append(resps[origin].Operators, remove)
				if moves%3 == 2 {
					create.Stage = heartbeatpb.StageApplied
					resps[dest].Dispatchers = append(resps[dest].Dispatchers, heartbeatpb.DispatcherStatus{
						Id: to, Span: s, State: heartbeatpb.StateWorking, CheckpointTs: 2_100})
				}
				resps[dest].Operators = append(resps[dest].Operators, create)
			}
		}
	}
	out := make([][]byte, benchNodes)
	for i, r := range resps {
		env := &heartbeatpb.Envelope{ClusterId: benchCluster, Changefeed: benchFeed, From: nodeName(i), To: benchSelf,
			Epoch: benchEpoch, Incarnation: uint64(i + 1), Seq: 1,
			Body: &heartbeatpb.Envelope_BootstrapResponse{BootstrapResponse: r}}
		data, err := env.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		out[i] = data
	}
	return cfg, out, running
}

func nodeName(i int) string { return fmt.Sprintf("n%02d", i) }

// BenchmarkRestore measures a maintainer taking over 1,000,000 spans on 10 nodes with 10,000
// operators in flight (target, #12: at most 1 s on a 2-core machine). LastAnswer times what the
// issue asks for: from the last bootstrap answer's bytes to the plan applied (that answer
// decoded and stepped in, the restore run over all ten, span DB loaded, operators resumed); the
// other nine answers arrived, and were decoded, before. AllAnswers also times decoding the nine.
func BenchmarkRestore(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) { benchRestore(b, shape) })
	}
}

func benchRestore(b *testing.B, shape benchShape) {
	cfg, encoded, running := benchResponses(b, shape)
	total := 0
	for _, e := range encoded {
		total += len(e)
	}
	nodes := make([]string, benchNodes)
	for i := range nodes {
		nodes[i] = nodeName(i)
	}
	for _, bc := range []struct {
		name  string
		early int // answers stepped in before the timer starts
	}{{"LastAnswer", benchNodes - 1}, {"AllAnswers", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportMetric(float64(total)/1e6, "MB-encoded")
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				m, err := maintainer.New(maintainer.Config{ClusterID: benchCluster, Changefeed: benchFeed,
					SelfNode: benchSelf, Epoch: benchEpoch, ChangefeedConfig: cfg, PersistedCheckpoint: benchCheckpont},
					nodes, time.Unix(0, 0))
				if err != nil {
					b.Fatal(err)
				}
				for j, data := range encoded {
					if j == bc.early {
						b.StartTimer()
					}
					stepEncoded(b, m, data)
				}
				b.StopTimer()
				st := m.Status()
				if !st.Bootstrapped || len(st.Operators) != running {
					b.Fatalf("restore incomplete: bootstrapped=%v operators=%d spans=%v", st.Bootstrapped,
						len(st.Operators), st.Spans)
				}
				runtime.GC()
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				// What the restored maintainer holds (span DB, operators), not the garbage on the way.
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "MB-retained")
				runtime.KeepAlive(m)
			}
		})
	}
}

func stepEncoded(b *testing.B, m *maintainer.Maintainer, data []byte) {
	env := &heartbeatpb.Envelope{}
	if err := env.Unmarshal(data); err != nil {
		b.Fatal(err)
	}
	if err := m.Step(env, time.Unix(1, 0)); err != nil {
		b.Fatal(err)
	}
}

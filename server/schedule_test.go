package server

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/dispatcher/sinkcheck"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/maintainer"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

// scheduleView is what the invariant checker reads from the maintainer's loop in one query.
type scheduleView struct {
	status    maintainer.Status
	inFlight  []operator.Info
	modeSpans map[string]map[string]int
}

// TestScheduleSkewedLoad runs a skewed-load changefeed with redo on over three in-process nodes
// (real gRPC, embedded etcd): two hot tables get split, their cold pieces move together and
// merge, cold tables are balanced, and a table is added and another removed through etcd. An
// invariant checker polls the maintainer throughout (I4: never two in-flight operators on
// overlapping spans of one mode); at the end the sinks show no double ownership at one time and
// no gap (I1, I2), and the schedule converges: everything replicating, no operator in flight,
// span counts per mode within one across the nodes.
func TestScheduleSkewedLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three nodes")
	}
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	keys := etcdutil.Keys{Cluster: "itest"}
	ctx := context.Background()
	// Hot tables 1 and 2 (2400 > 2000) split into four pieces of 600; the pieces are cold (< 700)
	// and merge pairwise into spans of 1200 (within 3/4 of the split threshold), which stay.
	info := etcdutil.ChangefeedInfo{ID: "cf1", StartTs: tsNow(), Redo: true,
		SplitLoadThreshold: 2000, MergeLoadThreshold: 700, SplitPieces: 4}
	for i := int64(1); i <= 20; i++ {
		load := uint64(100)
		if i <= 2 {
			load = 2400
		}
		info.Tables = append(info.Tables, etcdutil.TableInfo{ID: i, Load: load})
	}
	if err := etcdutil.CreateChangefeed(ctx, cli, keys, info); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*testNode{}
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes[id] = startTestNode(t, etcd.ClientURLs(), id)
	}
	w := &scheduleWatcher{t: t, cli: cli, keys: keys, nodes: nodes}
	// Every table's dispatchers advanced past the start (the changefeed checkpoint did), so
	// table 20 has records to check once it is gone: with splits starting after three 50ms load
	// reports, a removal at the first split could come before its dispatchers wrote anything.
	w.waitFor("a split, and the checkpoint past the start", 15*time.Second, func(v scheduleView) bool {
		return v.status.OperatorsDone["OpSplit/succeeded"] > 0 && v.status.Computed > info.StartTs
	})

	// Table 20 leaves, table 21 joins, through etcd while splits and moves are under way.
	cur, err := etcdutil.GetChangefeed(ctx, cli, keys, "cf1")
	if err != nil {
		t.Fatal(err)
	}
	cur.Tables = append(cur.Tables[:19:19], etcdutil.TableInfo{ID: 21, Load: 100})
	if err := etcdutil.UpdateChangefeed(ctx, cli, keys, cur); err != nil {
		t.Fatal(err)
	}
	// Two hot tables end in two spans per mode, the other eighteen in one: 2*2*2 + 18*2.
	const want = 8 + 36
	v := w.waitFor("convergence", 25*time.Second, func(v scheduleView) bool {
		st := v.status
		return st.Spans["replicating"] == want && st.Spans["absent"] == 0 && st.Spans["scheduling"] == 0 &&
			len(st.Operators) == 0 && st.OperatorsDone["OpMerge/succeeded"] >= 8 && balanced(v.modeSpans)
	})
	for _, kind := range []string{"OpAdd", "OpMove", "OpSplit", "OpMerge", "OpRemove"} {
		if v.status.OperatorsDone[kind+"/succeeded"] == 0 {
			t.Errorf("no %s succeeded: %v", kind, v.status.OperatorsDone)
		}
	}
	t.Logf("converged: per mode %v; done %v", v.modeSpans, v.status.OperatorsDone)
	for _, n := range nodes {
		n.stop()
	}
	records := readSinksByTable(t, nodes, map[int64]string{20: "removed", 21: "added"})
	kept := make([]int64, 19)
	for i := range kept {
		kept[i] = int64(i + 1)
	}
	checkRecords(t, "tables 1-19", records[""], info.StartTs, kept...)
	checkRecords(t, "removed table 20", records["removed"], info.StartTs, 20)
	// The added table starts from the changefeed checkpoint when it was added, a little below.
	checkRecords(t, "added table 21", records["added"], minFrom(records["added"]), 21)
}

// scheduleWatcher reads the maintainer's schedule through its loop, wherever it runs.
type scheduleWatcher struct {
	t     *testing.T
	cli   etcdClient
	keys  etcdutil.Keys
	nodes map[string]*testNode
}

// view runs one query on the current maintainer's loop; false when there is none right now.
func (w *scheduleWatcher) view() (scheduleView, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := etcdutil.GetStatus(ctx, w.cli, w.keys, "cf1")
	if err != nil || w.nodes[st.Maintainer] == nil {
		return scheduleView{}, false
	}
	var v scheduleView
	err = w.nodes[st.Maintainer].srv.terms.ask(ctx, "cf1", func(m *maintainer.Maintainer) {
		v = scheduleView{status: m.Status(), inFlight: m.InFlight(), modeSpans: m.ModeSpans()}
	})
	return v, err == nil
}

// waitFor polls the maintainer every 50ms, checking I4 on every view, until done accepts one.
func (w *scheduleWatcher) waitFor(what string, timeout time.Duration, done func(scheduleView) bool) scheduleView {
	w.t.Helper()
	var last scheduleView
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		v, ok := w.view()
		if !ok {
			continue
		}
		last = v
		if err := checkI4(v.inFlight); err != nil {
			w.t.Fatal(err)
		}
		if done(v) {
			return v
		}
	}
	w.t.Fatalf("%s: not within %v; last status %+v, in flight %+v", what, timeout, last.status, last.inFlight)
	return last
}

// readSinksByTable reads every node's sink and groups the records by the group named for their
// table ("" for the rest).
func readSinksByTable(t *testing.T, nodes map[string]*testNode, groups map[int64]string) map[string][]dispatcher.Record {
	t.Helper()
	out := map[string][]dispatcher.Record{}
	for id, n := range nodes {
		rs, err := dispatcher.ReadRecords(filepath.Join(n.dir, "sink", "cf1.jsonl"))
		if err != nil {
			t.Fatalf("node %s sink: %v", id, err)
		}
		for _, r := range rs {
			out[groups[r.Table]] = append(out[groups[r.Table]], r)
		}
	}
	return out
}

// checkRecords runs the sink checker (wall-time rule) over one group of records.
func checkRecords(t *testing.T, what string, records []dispatcher.Record, start uint64, tables ...int64) {
	t.Helper()
	if len(records) == 0 {
		t.Fatalf("%s: no sink records", what)
	}
	rep, err := sinkcheck.Check(records, start, tables...)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("%s: %d records over %d spans, %d replays, checked to ts %d", what, rep.Records, rep.Spans,
		len(rep.Repeats), rep.Bound)
}

func minFrom(records []dispatcher.Record) uint64 {
	var lo uint64
	for i, r := range records {
		if i == 0 || r.From < lo {
			lo = r.From
		}
	}
	return lo
}

// checkI4 fails when two in-flight operators hold overlapping spans of one mode.
func checkI4(ops []operator.Info) error {
	for i := range ops {
		for j := i + 1; j < len(ops); j++ {
			for _, a := range ops[i].Spans {
				for _, b := range ops[j].Spans {
					if a.Mode == b.Mode && span.Overlap(a.Span.Span(), b.Span.Span()) {
						return fmt.Errorf("I4: operators %v (%v) and %v (%v) overlap on %v and %v, mode %v",
							ops[i].ID, ops[i].Kind, ops[j].ID, ops[j].Kind, a.Span, b.Span, a.Mode)
					}
				}
			}
		}
	}
	return nil
}

// balanced: in each mode, every node's span count is within one of every other's.
func balanced(perMode map[string]map[string]int) bool {
	for _, counts := range perMode {
		if len(counts) != 3 {
			return false
		}
		lo, hi := 1<<30, 0
		for _, c := range counts {
			lo, hi = min(lo, c), max(hi, c)
		}
		if hi-lo > 1 {
			return false
		}
	}
	return true
}

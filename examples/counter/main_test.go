package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/node"
	"github.com/tidemark/tidemark/span"
	"github.com/tidemark/tidemark/ts"
)

const (
	testCluster = "counter"
	testFeed    = "cnt"
	testTables  = 12
)

// testNode is one node of the program's kind, run in this process as main runs it.
type testNode struct {
	id, dir string
	cancel  context.CancelFunc
	done    chan error
}

func startNode(t *testing.T, endpoints []string, id string) *testNode {
	t.Helper()
	n := &testNode{id: id, dir: t.TempDir(), done: make(chan error, 1)}
	cfg := node.Config{
		ClusterID: testCluster, NodeID: id, DataDir: n.dir, EtcdEndpoints: endpoints, Addr: "127.0.0.1:0",
		SessionTTL: 2 * time.Second, TickInterval: 50 * time.Millisecond, HeartbeatInterval: 300 * time.Millisecond,
		StatusPublishInterval: 200 * time.Millisecond, Logger: zap.NewNop(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() { n.done <- node.Run(ctx, cfg, map[string]node.Kind{KindName: counterKind}) }()
	t.Cleanup(n.stop)
	return n
}

func (n *testNode) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.cancel = nil
	if err := <-n.done; err != nil {
		panic(fmt.Sprintf("node %s: %v", n.id, err))
	}
}

// waitStatus waits until the published status has every span replicating, nothing in flight,
// and ok holds; it returns that status.
func waitStatus(t *testing.T, cli *clientv3.Client, what string, ok func(etcdutil.ChangefeedStatus) bool) etcdutil.ChangefeedStatus {
	t.Helper()
	var last etcdutil.ChangefeedStatus
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		st, err := etcdutil.GetStatus(context.Background(), cli, etcdutil.Keys{Cluster: testCluster}, testFeed)
		if err == nil {
			last = st
			if st.Spans["replicating"] == testTables && st.Operators == 0 && ok(st) {
				return st
			}
		}
	}
	t.Fatalf("%s: not within 20s; last status %+v", what, last)
	return last
}

// TestCounterUnderCluster runs the program's own dispatcher under three in-process nodes on
// embedded etcd: two nodes take the spans, a third joins and the balancer moves spans onto it,
// then a node stops and its spans go to the others, then the maintainer's node stops and the
// last node takes over the changefeed and every span. The tallies the dispatchers wrote must then
// cover every span from the start ts on without a gap; two dispatchers never counted the same
// span at once; and the only ts counted twice are a stopped node's last tallies, redone by the
// successor from the last checkpoint the node reported (a move hands over exactly).
func TestCounterUnderCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three nodes")
	}
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	info := etcdutil.ChangefeedInfo{ID: testFeed, StartTs: ts.FromTime(time.Now()), Dispatcher: KindName}
	for i := int64(1); i <= testTables; i++ {
		info.Tables = append(info.Tables, etcdutil.TableInfo{ID: i, Load: 10})
	}
	if err := etcdutil.CreateChangefeed(context.Background(), cli, etcdutil.Keys{Cluster: testCluster}, info); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*testNode{}
	for _, id := range []string{"n1", "n2"} {
		nodes[id] = startNode(t, etcd.ClientURLs(), id)
	}
	// Placed, and every span counted (durably) by its first owner: a span that moves before its
	// first owner wrote a tally leaves one run in the sink, and its move is not seen as one.
	st := waitStatus(t, cli, "placed on n1 and n2 and counted", func(st etcdutil.ChangefeedStatus) bool {
		return len(st.NodeSpans) == 2 && st.CheckpointTs > info.StartTs
	})
	t.Logf("placed: %v, maintainer %s", st.NodeSpans, st.Maintainer)

	nodes["n3"] = startNode(t, etcd.ClientURLs(), "n3")
	st = waitStatus(t, cli, "spans moved onto n3", func(st etcdutil.ChangefeedStatus) bool { return st.NodeSpans["n3"] >= 3 })
	t.Logf("after n3 joined: %v", st.NodeSpans)
	// Every span counted past now by its current owner before a node stops: a moved span's new
	// owner then has its first tally before its old node's stop, which is how checkTallies tells
	// a move from a stop's handoff.
	counted := ts.FromTime(time.Now())
	waitStatus(t, cli, "every span counted after the moves", func(st etcdutil.ChangefeedStatus) bool { return st.CheckpointTs > counted })
	time.Sleep(500 * time.Millisecond)

	victim := "n1"
	if st.Maintainer == victim {
		victim = "n2"
	}
	stoppedAt := map[string]int64{victim: time.Now().UnixMilli()}
	nodes[victim].stop()
	st = waitStatus(t, cli, victim+"'s spans re-placed", func(st etcdutil.ChangefeedStatus) bool { return st.NodeSpans[victim] == 0 })
	t.Logf("after %s stopped: %v", victim, st.NodeSpans)
	time.Sleep(500 * time.Millisecond)

	// The maintainer's node stops: the last node maintains the changefeed and serves every span.
	maint := st.Maintainer
	stoppedAt[maint] = time.Now().UnixMilli()
	nodes[maint].stop()
	st = waitStatus(t, cli, "maintainer "+maint+" replaced", func(st etcdutil.ChangefeedStatus) bool {
		return st.Maintainer != maint && st.Maintainer != victim && st.NodeSpans[st.Maintainer] == testTables
	})
	t.Logf("after maintainer %s stopped: maintainer %s, %v", maint, st.Maintainer, st.NodeSpans)
	time.Sleep(500 * time.Millisecond)
	for _, n := range nodes {
		n.stop()
	}

	var tallies []Tally
	for _, n := range nodes {
		tallies = append(tallies, readTallies(t, filepath.Join(n.dir, "counter", testFeed+".jsonl"))...)
	}
	rep := checkTallies(t, tallies, info.StartTs, stoppedAt)
	if rep.moves == 0 {
		t.Errorf("no span changed hands while both its dispatchers' nodes lived: the move case was not exercised")
	}
	if rep.handoffs <= rep.moves {
		t.Errorf("no span left a stopped node: the stop case was not exercised")
	}
	t.Logf("%d tallies over %d tables: %d handoffs (%d exact moves before any stop), %d ms counted twice after the stops of %s and %s; "+
		"every table counted through to at least %d ms past the start",
		len(tallies), testTables, rep.handoffs, rep.moves, rep.replayedMs, victim, maint, rep.minCoveredMs)
}

func readTallies(t *testing.T, path string) []Tally {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil // a node that never served a span of the changefeed
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Tally
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var tl Tally
		if err := json.Unmarshal(sc.Bytes(), &tl); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, tl)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tallyReport sums what checkTallies saw.
type tallyReport struct {
	handoffs, moves int
	replayedMs      int64
	minCoveredMs    int64
}

// checkTallies is the sink check of the example: per table, the dispatchers in the order they
// worked must each count a contiguous run of ts ranges, the first from the start ts; each one's
// first tally must come after its predecessor's last (never two owners at once); and each must
// start exactly where its predecessor ended (no gap, no overlap), except a successor of a
// stopped node that took over after the stop, which may start lower (a replay) but never
// above (a gap).
func checkTallies(t *testing.T, tallies []Tally, start uint64, stoppedAt map[string]int64) tallyReport {
	t.Helper()
	type run struct {
		node, id   string
		from, to   uint64
		first, end int64 // wall times of the first and last tally
	}
	byTable := map[int64]map[string]*run{}
	sort.SliceStable(tallies, func(i, j int) bool { return tallies[i].AtMs < tallies[j].AtMs })
	for _, tl := range tallies {
		whole := span.TableSpan(tl.Table)
		if tl.Start != fmt.Sprintf("%x", whole.StartKey) || tl.End != fmt.Sprintf("%x", whole.EndKey) {
			t.Fatalf("tally %+v is of part of table %d; this check wants whole-table spans", tl, tl.Table)
		}
		if tl.From >= tl.To || tl.Units != ts.PhysicalMs(tl.To)-ts.PhysicalMs(tl.From) {
			t.Fatalf("malformed tally %+v", tl)
		}
		if byTable[tl.Table] == nil {
			byTable[tl.Table] = map[string]*run{}
		}
		r := byTable[tl.Table][tl.Dispatcher]
		switch {
		case r == nil:
			byTable[tl.Table][tl.Dispatcher] = &run{node: tl.Node, id: tl.Dispatcher, from: tl.From, to: tl.To, first: tl.AtMs, end: tl.AtMs}
		case tl.From != r.to:
			t.Fatalf("table %d: dispatcher %s counted (%d, %d] after (.., %d]: its own tallies have a gap or an overlap",
				tl.Table, tl.Dispatcher, tl.From, tl.To, r.to)
		default:
			r.to, r.end = tl.To, tl.AtMs
		}
	}
	if len(byTable) != testTables {
		t.Fatalf("tallies of %d tables, want %d", len(byTable), testTables)
	}
	rep := tallyReport{minCoveredMs: 1 << 62}
	for table, runs := range byTable {
		order := make([]*run, 0, len(runs))
		for _, r := range runs {
			order = append(order, r)
		}
		sort.Slice(order, func(i, j int) bool { return order[i].first < order[j].first })
		if order[0].from != start {
			t.Errorf("table %d: first tally starts at %d, not at the start ts %d", table, order[0].from, start)
		}
		for i := 1; i < len(order); i++ {
			prev, cur := order[i-1], order[i]
			rep.handoffs++
			// The handoff followed the stop of prev's node (not a move before it).
			at, ok := stoppedAt[prev.node]
			afterStop := ok && cur.first >= at
			switch {
			case cur.first < prev.end:
				t.Errorf("table %d: %s on %s counted from %d ms while %s on %s still counted until %d ms: two owners at once",
					table, cur.id, cur.node, cur.first, prev.id, prev.node, prev.end)
			case cur.from > prev.to:
				t.Errorf("table %d: gap (%d, %d] between %s on %s and %s on %s", table, prev.to, cur.from, prev.id, prev.node, cur.id, cur.node)
			case cur.from < prev.to && !afterStop:
				t.Errorf("table %d: %s on %s recounted (%d, %d] that %s on %s (which kept running) had counted",
					table, cur.id, cur.node, cur.from, prev.to, prev.id, prev.node)
			case cur.from < prev.to:
				rep.replayedMs += ts.PhysicalMs(prev.to) - ts.PhysicalMs(cur.from)
			case !afterStop:
				rep.moves++
			}
		}
		last := order[len(order)-1]
		rep.minCoveredMs = min(rep.minCoveredMs, ts.PhysicalMs(last.to)-ts.PhysicalMs(start))
	}
	return rep
}

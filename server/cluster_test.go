package server

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/dispatcher/sinkcheck"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/ts"
)

// testNode is one in-process node of a test cluster.
type testNode struct {
	srv    *Server
	cancel context.CancelFunc
	done   chan error
	dir    string
	once   sync.Once
}

func startTestNode(t *testing.T, endpoints []string, id string) *testNode {
	t.Helper()
	return startTestNodeWith(t, endpoints, id, nil)
}

// startTestNodeWith is startTestNode with adjust, when not nil, applied to the server before it
// runs.
func startTestNodeWith(t *testing.T, endpoints []string, id string, adjust func(*Server)) *testNode {
	t.Helper()
	dir := t.TempDir()
	srv, err := New(Config{
		ClusterID:             "itest",
		NodeID:                id,
		DataDir:               dir,
		EtcdEndpoints:         endpoints,
		Addr:                  "127.0.0.1:0",
		StatusAddr:            "127.0.0.1:0",
		SessionTTL:            2 * time.Second,
		TickInterval:          50 * time.Millisecond,
		HeartbeatInterval:     300 * time.Millisecond,
		StatusPublishInterval: 200 * time.Millisecond,
		Logger:                zaptest.NewLogger(t).Named(id),
	})
	if err != nil {
		t.Fatalf("new node %s: %v", id, err)
	}
	if adjust != nil {
		adjust(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{srv: srv, cancel: cancel, done: make(chan error, 1), dir: dir}
	go func() { n.done <- srv.Run(ctx) }()
	t.Cleanup(n.stop)
	return n
}

// stop cancels the node and waits for Run to return; safe to call more than once.
func (n *testNode) stop() {
	n.once.Do(func() {
		n.cancel()
		select {
		case <-n.done:
		case <-time.After(15 * time.Second):
			panic("node did not stop within 15s")
		}
	})
}

// waitReplicating waits until the published status shows want spans replicating (and nothing
// else) on the given nodes, and returns that status.
func waitReplicating(t *testing.T, cli etcdClient, keys etcdutil.Keys, cf string, want int, timeout time.Duration,
	ok func(etcdutil.ChangefeedStatus) bool) etcdutil.ChangefeedStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last etcdutil.ChangefeedStatus
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := etcdutil.GetStatus(ctx, cli, keys, cf)
		cancel()
		if err == nil {
			last = st
			if st.Spans["replicating"] == want && st.Operators == 0 && (ok == nil || ok(st)) {
				return st
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("changefeed %s: not %d spans replicating within %v; last status %+v", cf, want, timeout, last)
	return last
}

// TestClusterPlacesAndRecovers runs three in-process nodes over real gRPC on embedded etcd: all
// spans get placed; a node that leaves has its spans re-placed on the others; the maintainer's
// node leaving makes another node maintainer with a larger epoch; the sinks show no key owned
// twice at one ts and no gap.
func TestClusterPlacesAndRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three nodes")
	}
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	keys := etcdutil.Keys{Cluster: "itest"}
	const tables = 60
	info := etcdutil.ChangefeedInfo{ID: "cf1"}
	for i := 1; i <= tables; i++ {
		info.Tables = append(info.Tables, etcdutil.TableInfo{ID: int64(i), Load: 10})
	}
	info.StartTs = tsNow()
	ctx := context.Background()
	if err := etcdutil.CreateChangefeed(ctx, cli, keys, info); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*testNode{}
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes[id] = startTestNode(t, etcd.ClientURLs(), id)
	}
	st := waitReplicating(t, cli, keys, "cf1", tables, 30*time.Second, func(st etcdutil.ChangefeedStatus) bool {
		return len(st.NodeSpans) == 3
	})
	firstEpoch, maint := st.Epoch, st.Maintainer
	t.Logf("placed %d spans; maintainer %s epoch %d; per node %v", tables, maint, firstEpoch, st.NodeSpans)

	// A node that is not the maintainer leaves: its spans go to the other two.
	var victim string
	for id := range nodes {
		if id != maint {
			victim = id
			break
		}
	}
	nodes[victim].stop()
	st = waitReplicating(t, cli, keys, "cf1", tables, 20*time.Second, func(st etcdutil.ChangefeedStatus) bool {
		return st.NodeSpans[victim] == 0 && st.Epoch == firstEpoch
	})
	t.Logf("after %s left: per node %v", victim, st.NodeSpans)

	// The maintainer's node leaves: the last node takes over with a larger epoch.
	nodes[maint].stop()
	st = waitReplicating(t, cli, keys, "cf1", tables, 20*time.Second, func(st etcdutil.ChangefeedStatus) bool {
		return st.Epoch > firstEpoch && st.Maintainer != maint
	})
	t.Logf("after maintainer %s left: maintainer %s epoch %d", maint, st.Maintainer, st.Epoch)
	for _, n := range nodes {
		n.stop()
	}
	checkSinks(t, nodes, info.StartTs)
}

func checkSinks(t *testing.T, nodes map[string]*testNode, start uint64) {
	t.Helper()
	var records []dispatcher.Record
	for id, n := range nodes {
		rs, err := dispatcher.ReadRecords(filepath.Join(n.dir, "sink", "cf1.jsonl"))
		if err != nil {
			t.Fatalf("node %s sink: %v", id, err)
		}
		records = append(records, rs...)
	}
	if len(records) == 0 {
		t.Fatal("no sink records at all: dispatchers processed nothing")
	}
	report, err := sinkcheck.Check(records, start)
	if err != nil {
		t.Fatalf("sink records: %v", err)
	}
	if err := report.Err(); err != nil {
		t.Fatalf("invariants violated over %d records: %v", len(records), err)
	}
	t.Logf("sink check: %d records over %d spans, no gap and no double ownership up to ts %d",
		report.Records, report.Spans, report.Bound)
}

type etcdClient = *clientv3.Client

func tsNow() uint64 { return ts.FromTime(time.Now()) }

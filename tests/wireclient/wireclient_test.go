package wireclient

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/dispatcher/sinkcheck"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/server"
	"github.com/tidemark/tidemark/ts"
)

type node struct {
	dir    string
	cancel context.CancelFunc
	done   chan error
}

func startNode(t *testing.T, endpoints []string, id string) *node {
	t.Helper()
	n := &node{dir: t.TempDir(), done: make(chan error, 1)}
	srv, err := server.New(server.Config{
		ClusterID: "wire", NodeID: id, DataDir: n.dir, EtcdEndpoints: endpoints,
		Addr: "127.0.0.1:0", StatusAddr: "127.0.0.1:0", SessionTTL: 2 * time.Second,
		TickInterval: 50 * time.Millisecond, HeartbeatInterval: 300 * time.Millisecond,
		StatusPublishInterval: 100 * time.Millisecond, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named(id),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() { n.done <- srv.Run(ctx) }()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.cancel = nil
	select {
	case <-n.done:
	case <-time.After(15 * time.Second):
		panic("node did not stop")
	}
}

// settled waits until every span replicates with no operator, on nodes, with a status newer
// than the maintainer at epoch above.
func settled(t *testing.T, cli *clientv3.Client, k etcdutil.Keys, spans, nodes int, above uint64) etcdutil.ChangefeedStatus {
	t.Helper()
	var last etcdutil.ChangefeedStatus
	for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := etcdutil.GetStatus(ctx, cli, k, "cf1")
		cancel()
		if err == nil {
			last = st
			if st.Epoch > above && st.Spans["replicating"] == spans && st.Operators == 0 && balanced(st.NodeSpans, nodes) {
				return st
			}
		}
	}
	t.Fatalf("not settled: %+v", last)
	return last
}

// balanced: nodes nodes hold spans, within one of each other (a node that just joined is listed
// with none until the balancer moved some to it).
func balanced(counts map[string]int, nodes int) bool {
	lo, hi := int(^uint(0)>>1), 0
	for _, c := range counts {
		lo, hi = min(lo, c), max(hi, c)
	}
	return len(counts) == nodes && lo > 0 && hi-lo <= 1
}

// TestForgeriesLeaveTheClusterUnharmed plays the hostile peer of issue 9 against four real
// in-process nodes on embedded etcd: forged higher epochs under the maintainer's own ID (a
// create of a span another node owns, a remove of a working dispatcher), a registered node that
// is not the maintainer, an unregistered sender, replays of an older epoch and garbage. The
// target must keep following the real maintainer at the real epoch, the attacked spans must
// keep their dispatchers, the sinks must show no double owner or gap, and the real maintainer's
// admin move must still work.
func TestForgeriesLeaveTheClusterUnharmed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and four nodes")
	}
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	k := etcdutil.Keys{Cluster: "wire"}
	const tables = 24
	info := etcdutil.ChangefeedInfo{ID: "cf1", StartTs: ts.FromTime(time.Now())}
	for i := 1; i <= tables; i++ {
		info.Tables = append(info.Tables, etcdutil.TableInfo{ID: int64(i), Load: 10})
	}
	ctx := context.Background()
	if err := etcdutil.CreateChangefeed(ctx, cli, k, info); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*node{}
	for i := 1; i <= 4; i++ {
		id := fmt.Sprintf("n%d", i)
		nodes[id] = startNode(t, etcd.ClientURLs(), id)
	}
	st := settled(t, cli, k, tables, 4, 0)
	if st.Maintainer == "n4" {
		// The maintainer's own name can only be claimed to a node with a larger ID.
		nodes["n4"].stop()
		delete(nodes, "n4")
		st = settled(t, cli, k, tables, 3, st.Epoch)
	}
	target, err := Observe(ctx, cli, k, "cf1")
	if err != nil {
		t.Fatal(err)
	}
	attacks, skipped := Attacks(target)
	if len(skipped) > 0 {
		t.Fatalf("attacks left out: %v", skipped)
	}
	t.Logf("attacking %s (maintainer %s epoch %d): victim %v, foreign %v", target.Node, target.Maintainer,
		target.Epoch, target.Victim.Dispatcher, target.Foreign.Dispatcher)
	for _, r := range Run(ctx, target, attacks) {
		if r.Err != nil {
			t.Fatalf("attack %s not delivered: %v", r.Attack, r.Err)
		}
	}
	// A name above the target's cannot even open a stream to it.
	if _, err := Dial(ctx, Config{Addr: target.Addr, ClusterID: "wire", From: "zz-above", To: target.Node}); !errors.Is(err, ErrRejected) {
		t.Fatalf("stream as a larger ID: %v, want ErrRejected", err)
	}
	// Long enough for any forged effect to show in heartbeats and the published status, and
	// past the hold timeout of anything etcd did not refute.
	time.Sleep(4 * time.Second)
	if err := Unharmed(ctx, cli, k, target); err != nil {
		t.Fatal(err)
	}

	// The real maintainer still commands the target: move the victim span to the bystander.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	msg, err := MoveSpan(wctx, cli, k, "cf1", target.Victim, target.Bystander)
	if err != nil {
		t.Fatalf("admin move after the attacks: %v", err)
	}
	t.Logf("admin move after the attacks: %s", msg)

	for _, n := range nodes {
		n.stop()
	}
	var records []dispatcher.Record
	for id, n := range nodes {
		rs, err := dispatcher.ReadRecords(filepath.Join(n.dir, "sink", "cf1.jsonl"))
		if err != nil {
			t.Fatalf("%s sink: %v", id, err)
		}
		records = append(records, rs...)
	}
	rep, err := sinkcheck.Check(records, info.StartTs)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("sinks over %d records: %v", len(records), err)
	}
	t.Logf("sinks: %d records over %d spans, no double owner, no gap", rep.Records, rep.Spans)
}

package wireclient

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/dispatcher/sinkcheck"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/server"
	"github.com/tidemark/tidemark/ts"
)

// The in-process cluster both hostile-peer tests attack: four nodes on embedded etcd, one
// changefeed, and what the checks after the attacks need.

type node struct {
	dir    string
	cancel context.CancelFunc
	done   chan error
	logs   *observer.ObservedLogs // every entry at Info and above, for the transport's lines
}

// startNode starts node id; peerTLS nil runs it in plaintext.
func startNode(t *testing.T, endpoints []string, id string, peerTLS *tls.Config) *node {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	n := &node{dir: t.TempDir(), done: make(chan error, 1), logs: logs}
	tee := zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, core) }))
	srv, err := server.New(server.Config{
		ClusterID: "wire", NodeID: id, DataDir: n.dir, EtcdEndpoints: endpoints,
		Addr: "127.0.0.1:0", StatusAddr: "127.0.0.1:0", SessionTTL: 2 * time.Second,
		TickInterval: 50 * time.Millisecond, HeartbeatInterval: 300 * time.Millisecond,
		StatusPublishInterval: 100 * time.Millisecond, PeerTLS: peerTLS,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel), tee).Named(id),
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

// cluster is four nodes n1..n4 and the attack target.
type cluster struct {
	cli     *clientv3.Client
	keys    etcdutil.Keys
	info    etcdutil.ChangefeedInfo
	nodes   map[string]*node
	retired []*node // stopped before the attacks; their sinks count too
	target  Target
}

const tables = 24

// startCluster starts etcd and the nodes, waits until they settled, and observes the target.
// peerTLS gives each node its peer TLS config (nil: plaintext); api reads the status API.
func startCluster(t *testing.T, peerTLS func(id string) *tls.Config, api StatusAPI) *cluster {
	t.Helper()
	etcd := embedetcd.StartForTest(t)
	c := &cluster{cli: etcd.Client(t), keys: etcdutil.Keys{Cluster: "wire"}, nodes: map[string]*node{}}
	c.info = etcdutil.ChangefeedInfo{ID: "cf1", StartTs: ts.FromTime(time.Now())}
	for i := 1; i <= tables; i++ {
		c.info.Tables = append(c.info.Tables, etcdutil.TableInfo{ID: int64(i), Load: 10})
	}
	ctx := context.Background()
	if err := etcdutil.CreateChangefeed(ctx, c.cli, c.keys, c.info); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		id := fmt.Sprintf("n%d", i)
		c.nodes[id] = startNode(t, etcd.ClientURLs(), id, peerTLS(id))
	}
	st := settled(t, c.cli, c.keys, tables, 4, 0)
	if st.Maintainer == "n4" {
		// The maintainer's own name can only be claimed to a node with a larger ID: n4 steps
		// down by stopping, and comes back (in a new data dir) under another maintainer.
		c.nodes["n4"].stop()
		c.retired = append(c.retired, c.nodes["n4"])
		st = settled(t, c.cli, c.keys, tables, 3, st.Epoch)
		c.nodes["n4"] = startNode(t, etcd.ClientURLs(), "n4", peerTLS("n4"))
		settled(t, c.cli, c.keys, tables, 4, st.Epoch-1)
	}
	var err error
	if c.target, err = Observe(ctx, api, c.cli, c.keys, "cf1"); err != nil {
		t.Fatal(err)
	}
	t.Logf("attacking %s (maintainer %s epoch %d): victim %v, foreign %v", c.target.Node, c.target.Maintainer,
		c.target.Epoch, c.target.Victim.Dispatcher, c.target.Foreign.Dispatcher)
	return c
}

// run sends the attacks and fails the test if one was not delivered.
func (c *cluster) run(t *testing.T, attacks []Attack) {
	t.Helper()
	for _, r := range Run(context.Background(), c.target, attacks) {
		if r.Err != nil {
			t.Fatalf("attack %s not delivered: %v", r.Attack, r.Err)
		}
	}
}

// checkUnharmed is what both tests assert after the attacks: the cluster is unharmed
// (Unharmed), then more checks of the caller's (more, may be nil), then the real maintainer's
// admin move still works, and, once every node stopped, the sinks show no double owner and no gap.
func (c *cluster) checkUnharmed(t *testing.T, more func()) {
	t.Helper()
	ctx := context.Background()
	// Long enough for any forged effect to show in heartbeats and the published status, and
	// past the hold timeout of anything etcd did not refute.
	time.Sleep(4 * time.Second)
	if err := Unharmed(ctx, c.cli, c.keys, c.target); err != nil {
		t.Fatal(err)
	}
	if more != nil {
		more()
	}

	// The real maintainer still commands the target: move the victim span to the bystander.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	msg, err := MoveSpan(wctx, c.cli, c.keys, "cf1", c.target.Victim, c.target.Bystander)
	if err != nil {
		t.Fatalf("admin move after the attacks: %v", err)
	}
	t.Logf("admin move after the attacks: %s", msg)

	for _, n := range c.nodes {
		n.stop()
	}
	var records []dispatcher.Record
	for _, n := range slices.AppendSeq(slices.Clone(c.retired), maps.Values(c.nodes)) {
		rs, err := dispatcher.ReadRecords(filepath.Join(n.dir, "sink", "cf1.jsonl"))
		if err != nil {
			t.Fatalf("%s sink: %v", n.dir, err)
		}
		records = append(records, rs...)
	}
	rep, err := sinkcheck.Check(records, c.info.StartTs)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("sinks over %d records: %v", len(records), err)
	}
	t.Logf("sinks: %d records over %d spans, no double owner, no gap", rep.Records, rep.Spans)
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

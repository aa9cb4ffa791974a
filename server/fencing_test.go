package server

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// TestRevokedMaintainerIsFenced is acceptance 3 of the failover issue, on embedded etcd with three
// real in-process nodes: while the maintainer has operators in flight, its election session's
// lease is revoked through the etcd client and its process keeps running. Then:
//   - no dispatcher of its epoch is created after the revoke (sink records), and requests it
//     still sends afterwards (injected through its own transport) are rejected by every node
//     (their rejection counters) and executed by none;
//   - another node takes over with a larger epoch and finishes the operators in flight: every
//     span replicates, nothing is left in flight, and the sinks show no double ownership or gap.
func TestRevokedMaintainerIsFenced(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three nodes")
	}
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	keys := etcdutil.Keys{Cluster: "itest"}
	const tables = 90
	info := etcdutil.ChangefeedInfo{ID: "cf1", StartTs: tsNow()}
	for i := 1; i <= tables; i++ {
		info.Tables = append(info.Tables, etcdutil.TableInfo{ID: int64(i), Load: 10})
	}
	ctx := context.Background()
	if err := etcdutil.CreateChangefeed(ctx, cli, keys, info); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*testNode{}
	for _, id := range []string{"n1", "n2"} {
		nodes[id] = startFastPublishingNode(t, etcd.ClientURLs(), id)
	}
	st := waitReplicating(t, cli, keys, "cf1", tables, 30*time.Second, func(st etcdutil.ChangefeedStatus) bool {
		return len(st.NodeSpans) == 2
	})
	oldEpoch, oldMaint := st.Epoch, st.Maintainer

	// A new node makes the balance scheduler move spans to it: revoke while they move. Moves take
	// a few hundred milliseconds; status is published every 10ms here so the test sees them.
	for i := 3; ; i++ {
		id := fmt.Sprintf("n%d", i)
		nodes[id] = startFastPublishingNode(t, etcd.ClientURLs(), id)
		if waitMoves(cli, keys, oldEpoch, 10*time.Second) {
			break
		}
		if i == 5 {
			t.Fatal("never saw a move in flight")
		}
	}
	revokedAt := revokeLeaderLease(t, cli, keys, oldEpoch)
	t.Logf("revoked the lease of maintainer %s (epoch %d) with moves in flight", oldMaint, oldEpoch)

	// The new maintainer is elected and every node learns its epoch from etcd.
	st = waitStatus(t, cli, keys, 20*time.Second, "a new maintainer", func(st etcdutil.ChangefeedStatus) bool {
		return st.Epoch > oldEpoch
	})
	time.Sleep(500 * time.Millisecond)

	// The old maintainer's process keeps running: whatever it still sends is refused.
	before := map[string]float64{}
	for id, n := range nodes {
		before[id] = counterValue(n.srv.metrics.rejected.WithLabelValues("dispatcher-manager"))
	}
	stray := heartbeatpb.DispatcherID{Hi: oldEpoch, Lo: 1 << 40}
	for id := range nodes {
		nodes[oldMaint].srv.transport.Send(staleCreate(oldMaint, id, oldEpoch, stray))
	}
	waitFor(t, 10*time.Second, "every node rejects the stale request", func() bool {
		for id, n := range nodes {
			if counterValue(n.srv.metrics.rejected.WithLabelValues("dispatcher-manager")) <= before[id] {
				return false
			}
		}
		return true
	})

	// The new maintainer finishes the moves: everything replicates on three nodes.
	st = waitReplicating(t, cli, keys, "cf1", tables, 30*time.Second, func(st etcdutil.ChangefeedStatus) bool {
		return st.Epoch > oldEpoch && len(st.NodeSpans) == len(nodes)
	})
	t.Logf("maintainer %s epoch %d finished; per node %v", st.Maintainer, st.Epoch, st.NodeSpans)
	for _, n := range nodes {
		n.stop()
	}
	checkNoLateDispatchers(t, nodes, oldEpoch, stray, revokedAt)
	checkSinks(t, nodes, info.StartTs)
}

// revokeLeaderLease revokes the lease of the election key created at epoch and returns when.
func revokeLeaderLease(t *testing.T, cli *clientv3.Client, keys etcdutil.Keys, epoch uint64) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, keys.ElectionPrefix("cf1"), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if uint64(kv.CreateRevision) == epoch {
			if _, err := cli.Revoke(ctx, clientv3.LeaseID(kv.Lease)); err != nil {
				t.Fatal(err)
			}
			return time.Now()
		}
	}
	t.Fatalf("no election key of epoch %d", epoch)
	return time.Time{}
}

// staleCreate is a create request of the old epoch, as the revoked maintainer would send it.
func staleCreate(from, to string, epoch uint64, id heartbeatpb.DispatcherID) *heartbeatpb.Envelope {
	s := span.TableSpan(1)
	desc := heartbeatpb.OperatorDescriptor{Id: heartbeatpb.OperatorID{Epoch: epoch, Seq: 1 << 40}, Kind: heartbeatpb.OpAdd,
		Targets: []heartbeatpb.SpanPlacement{{Span: s, DispatcherId: id, NodeId: to}}}
	return &heartbeatpb.Envelope{ClusterId: "itest", Changefeed: "cf1", From: from, To: to, Epoch: epoch,
		Incarnation: epoch, Seq: 1 << 40,
		Body: &heartbeatpb.Envelope_Schedule{Schedule: &heartbeatpb.ScheduleDispatcherRequests{
			Requests: []heartbeatpb.ScheduleDispatcherRequest{{
				Config: heartbeatpb.DispatcherConfig{Id: id, Span: s, StartTs: 1}, Action: heartbeatpb.ActionCreate,
				OperatorType: heartbeatpb.OpAdd, Operator: desc}}}}}
}

// checkNoLateDispatchers: no dispatcher of the revoked epoch started after the revoke (a
// dispatcher writes its first record on its first poll, one tick after it is created), and the
// injected one never ran anywhere.
func checkNoLateDispatchers(t *testing.T, nodes map[string]*testNode, epoch uint64, stray heartbeatpb.DispatcherID,
	revokedAt time.Time) {
	t.Helper()
	first := map[string]int64{}
	for id, n := range nodes {
		rs, err := dispatcher.ReadRecords(filepath.Join(n.dir, "sink", "cf1.jsonl"))
		if err != nil {
			t.Fatalf("node %s sink: %v", id, err)
		}
		for _, r := range rs {
			if at, ok := first[r.Dispatcher]; !ok || r.At < at {
				first[r.Dispatcher] = r.At
			}
		}
	}
	if _, ran := first[dispatcher.FormatID(stray)]; ran {
		t.Fatalf("the stale request of epoch %d was executed", epoch)
	}
	// Creation precedes the first record by at most a tick (50ms); allow two plus scheduling noise.
	limit := revokedAt.Add(250 * time.Millisecond).UnixMilli()
	prefix := fmt.Sprintf("%d-", epoch)
	for d, at := range first {
		if len(d) > len(prefix) && d[:len(prefix)] == prefix && at > limit {
			t.Fatalf("dispatcher %s of revoked epoch %d first ran %dms after the revoke", d, epoch, at-revokedAt.UnixMilli())
		}
	}
}

func waitStatus(t *testing.T, cli *clientv3.Client, keys etcdutil.Keys, timeout time.Duration, what string,
	ok func(etcdutil.ChangefeedStatus) bool) etcdutil.ChangefeedStatus {
	t.Helper()
	var last etcdutil.ChangefeedStatus
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := etcdutil.GetStatus(ctx, cli, keys, "cf1")
		cancel()
		if err == nil {
			last = st
			if ok(st) {
				return st
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s; last status %+v", timeout, what, last)
	return last
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// startFastPublishingNode is startTestNode with the maintainer status published every 10ms.
func startFastPublishingNode(t *testing.T, endpoints []string, id string) *testNode {
	t.Helper()
	dir := t.TempDir()
	srv, err := New(Config{
		ClusterID: "itest", NodeID: id, DataDir: dir, EtcdEndpoints: endpoints,
		Addr: "127.0.0.1:0", StatusAddr: "127.0.0.1:0", SessionTTL: 2 * time.Second,
		TickInterval: 50 * time.Millisecond, HeartbeatInterval: 300 * time.Millisecond,
		StatusPublishInterval: 10 * time.Millisecond, Logger: zaptest.NewLogger(t).Named(id),
	})
	if err != nil {
		t.Fatalf("new node %s: %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{srv: srv, cancel: cancel, done: make(chan error, 1), dir: dir}
	go func() { n.done <- srv.Run(ctx) }()
	t.Cleanup(n.stop)
	return n
}

// waitMoves reports whether the maintainer of epoch shows an operator in flight within timeout.
func waitMoves(cli *clientv3.Client, keys etcdutil.Keys, epoch uint64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := etcdutil.GetStatus(ctx, cli, keys, "cf1")
		cancel()
		if err == nil && st.Epoch == epoch && st.Operators > 0 {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

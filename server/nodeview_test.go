package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap/zaptest"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/messaging"
)

// TestNodeViewNeverGoesBack: a term's own read of the registry replaces an older set from the
// watch, and a set from the watch older than that read is dropped instead of undoing it.
func TestNodeViewNeverGoesBack(t *testing.T) {
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	ctx := context.Background()
	s, err := New(Config{ClusterID: "view", NodeID: "a", DataDir: t.TempDir(), EtcdEndpoints: etcd.ClientURLs(),
		Addr: "127.0.0.1:0", Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s.cli = cli
	tr, err := messaging.NewGRPC(messaging.GRPCConfig{NodeID: "a", ClusterID: "view", ListenAddr: "127.0.0.1:0"}, func(*heartbeatpb.Envelope) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	s.transport = tr

	register := func(id string) {
		sess, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sess.Close() })
		if err := etcdutil.RegisterNode(ctx, sess, s.keys, etcdutil.NodeInfo{ID: id, Addr: "127.0.0.1:1"}); err != nil {
			t.Fatal(err)
		}
	}
	register("a")
	watched, err := etcdutil.LoadNodes(ctx, cli, s.keys) // what a lagging watch still shows
	if err != nil {
		t.Fatal(err)
	}
	if !s.applyNodes(watched) {
		t.Fatal("the first set was dropped")
	}
	register("b")
	register("c")
	if got := viewIDs(s); got != "[a]" {
		t.Fatalf("view before the refresh = %s, want [a]", got)
	}
	if err := s.refreshNodes(ctx, zaptest.NewLogger(t)); err != nil {
		t.Fatal(err)
	}
	if got := viewIDs(s); got != "[a b c]" {
		t.Fatalf("view after the refresh = %s, want [a b c]", got)
	}
	if s.applyNodes(watched) {
		t.Error("the watch's older set was applied after the refresh")
	}
	if got := viewIDs(s); got != "[a b c]" {
		t.Fatalf("view after the watch's older set = %s, want [a b c]", got)
	}
	if _, err := cli.Delete(ctx, s.keys.Node("b")); err != nil {
		t.Fatal(err)
	}
	newer, err := etcdutil.LoadNodes(ctx, cli, s.keys)
	if err != nil {
		t.Fatal(err)
	}
	if !s.applyNodes(newer) || viewIDs(s) != "[a c]" {
		t.Fatalf("a newer set was not applied: view %s", viewIDs(s))
	}
	// A new session (an etcd restored from a snapshot starts at lower revisions) takes any set.
	s.resetNodeView()
	if !s.applyNodes(watched) || viewIDs(s) != "[a]" {
		t.Fatalf("after a reset the view %s did not take the set", viewIDs(s))
	}
}

func viewIDs(s *Server) string {
	nodes, _ := s.nodes.Get()
	return fmt.Sprint(sortedKeys(incarnations(nodes)))
}

// laggingWatch is the real node watch with every set after the first handed on late, in order:
// a watch that re-lists behind the registry, as a loaded node's does.
func laggingWatch(lag time.Duration) func(context.Context, *clientv3.Client, etcdutil.Keys) (<-chan etcdutil.NodeSet, error) {
	return func(ctx context.Context, cli *clientv3.Client, k etcdutil.Keys) (<-chan etcdutil.NodeSet, error) {
		in, err := etcdutil.WatchNodes(ctx, cli, k)
		if err != nil {
			return nil, err
		}
		out := make(chan etcdutil.NodeSet, 1)
		out <- <-in
		go func() {
			defer close(out)
			for set := range in {
				select {
				case <-time.After(lag):
				case <-ctx.Done():
					return
				}
				select {
				case out <- set:
				case <-ctx.Done():
					return
				}
			}
		}()
		return out, nil
	}
}

// TestNewTermSeesNodesItsWatchHasNot: nodes whose watches lag by ten seconds start one after another
// (each first sees only the nodes before it), then changefeeds are created. Whichever node wins a
// changefeed's election, its first placement must use all three nodes: a term that took its
// lagging watch's set bootstrapped only the nodes it knew and put every span on them (one
// changefeed in 27 would pass by chance, all three won by the last node started).
func TestNewTermSeesNodesItsWatchHasNot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three nodes")
	}
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	keys := etcdutil.Keys{Cluster: "itest"}
	ctx := context.Background()
	for _, id := range []string{"n1", "n2", "n3"} {
		startTestNodeWith(t, etcd.ClientURLs(), id, func(s *Server) { s.watchNodes = laggingWatch(10 * time.Second) })
		waitFor(t, 10*time.Second, id+" registered", func() bool {
			resp, err := cli.Get(ctx, keys.Node(id))
			return err == nil && len(resp.Kvs) == 1
		})
	}
	const tables = 30
	feeds := []string{"cf1", "cf2", "cf3"}
	for _, cf := range feeds {
		info := etcdutil.ChangefeedInfo{ID: cf, StartTs: tsNow()}
		for i := 1; i <= tables; i++ {
			info.Tables = append(info.Tables, etcdutil.TableInfo{ID: int64(i), Load: 10})
		}
		if err := etcdutil.CreateChangefeed(ctx, cli, keys, info); err != nil {
			t.Fatal(err)
		}
	}
	for _, cf := range feeds {
		// Within the lag: a node whose set lacks the maintainer refuses its bootstrap request
		// and reads the registry rather than wait for its watch.
		st := firstFullPlacement(t, cli, keys, cf, tables, 6*time.Second)
		t.Logf("%s: maintainer %s placed %v", cf, st.Maintainer, st.NodeSpans)
		if len(st.NodeSpans) != 3 {
			t.Errorf("%s: maintainer %s placed its spans on %v, not on all three nodes", cf, st.Maintainer, st.NodeSpans)
		}
	}
}

// firstFullPlacement is the first published status of cf with every span replicating.
func firstFullPlacement(t *testing.T, cli *clientv3.Client, keys etcdutil.Keys, cf string, want int, timeout time.Duration) etcdutil.ChangefeedStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := etcdutil.GetStatus(c, cli, keys, cf)
		cancel()
		if err == nil && st.Spans["replicating"] == want {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not %d spans replicating within %v", cf, want, timeout)
	return etcdutil.ChangefeedStatus{}
}

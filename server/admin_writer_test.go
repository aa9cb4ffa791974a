package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// TestAdminWriter: results queued off the loop are all in etcd, each counted once and in queue
// order, when wait returns; once the term's session is gone the writer reports ErrNotLeader
// (from failed and wait) instead of writing.
func TestAdminWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	keys := etcdutil.Keys{Cluster: "wtest"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	lead, err := etcdutil.Campaign(ctx, sess, keys, "cf1", "n1")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var written []string
	w := newAdminWriter(lead, zap.NewNop(), func(r etcdutil.AdminResult) {
		mu.Lock()
		written = append(written, r.ID)
		mu.Unlock()
	})
	go w.run(ctx)
	var want []string
	for i := range etcdutil.MaxAdminResultsPerTxn*2 + 5 {
		id := fmt.Sprintf("r%03d", i)
		want = append(want, id)
		w.add([]etcdutil.AdminResult{{ID: id, Kind: admin.Move, Outcome: admin.Done, Message: "moved"}})
	}
	if err := w.wait(ctx); err != nil {
		t.Fatalf("wait: %v", err)
	}
	mu.Lock()
	got := fmt.Sprint(written)
	mu.Unlock()
	if got != fmt.Sprint(want) {
		t.Fatalf("written %s, want %s", got, want)
	}
	resp, err := cli.Get(ctx, keys.AdminResult(""), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != int64(len(want)) {
		t.Fatalf("etcd holds %d results (err %v), want %d", resp.Count, err, len(want))
	}

	if err := sess.Close(); err != nil { // the term is over: its election key is gone
		t.Fatal(err)
	}
	w.add([]etcdutil.AdminResult{{ID: "late", Kind: admin.Move, Outcome: admin.Done}})
	if err := w.wait(ctx); !errors.Is(err, etcdutil.ErrNotLeader) {
		t.Fatalf("wait after the term ended: %v, want ErrNotLeader", err)
	}
	if err := w.failed(); !errors.Is(err, etcdutil.ErrNotLeader) {
		t.Fatalf("failed after the term ended: %v, want ErrNotLeader", err)
	}
	if r, _ := cli.Get(ctx, keys.AdminResult("late")); len(r.Kvs) != 0 {
		t.Fatal("a result was written after the term ended")
	}
}

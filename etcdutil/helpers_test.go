package etcdutil

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// waitTimeout bounds every wait on real etcd in these tests.
const waitTimeout = 10 * time.Second

// testKeys is the cluster every test works in.
var testKeys = Keys{Cluster: "test"}

// newEtcd starts an embedded etcd and returns a client of it; both close at test end.
func newEtcd(t *testing.T) (*embedetcd.Server, *clientv3.Client) {
	t.Helper()
	srv := embedetcd.StartForTest(t)
	return srv, srv.Client(t)
}

// newSession opens a session with the given TTL (seconds) closed at test end.
func newSession(t *testing.T, cli *clientv3.Client, ttl int) *concurrency.Session {
	t.Helper()
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl))
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	return sess
}

// testCtx is a context bounded by waitTimeout and cancelled at test end.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// recv waits for one value from ch, failing the test after waitTimeout or if ch is closed.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("%s: nothing within %v", what, waitTimeout)
	}
	var zero T
	return zero
}

// recvUntil reads from ch until ok(v) holds, failing after waitTimeout.
func recvUntil[T any](t *testing.T, ch <-chan T, what string, ok func(T) bool) T {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case v, open := <-ch:
			if !open {
				t.Fatalf("%s: channel closed", what)
			}
			if ok(v) {
				return v
			}
		case <-deadline:
			t.Fatalf("%s: not seen within %v", what, waitTimeout)
		}
	}
}

func clientPrefix() clientv3.OpOption { return clientv3.WithPrefix() }

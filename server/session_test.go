package server

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"

	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

func TestSessionBackoffResetsAfterHealthySession(t *testing.T) {
	const ttl = 5 * time.Second
	b := newSessionBackoff(ttl)
	ms := time.Millisecond
	steps := []struct {
		lived time.Duration
		want  time.Duration
	}{
		{0, 200 * ms}, // etcd unreachable: the session never started
		{0, 400 * ms},
		{0, 800 * ms},
		{0, time.Second}, // capped at max(1 s, TTL/5)
		{0, time.Second},
		{ttl + ms, 200 * ms}, // a healthy session: the next loss starts over
		{0, 400 * ms},
		{ttl, 800 * ms}, // not longer than the TTL: still the same incident
		{3 * ttl, 200 * ms},
	}
	for i, st := range steps {
		if got := b.next(st.lived); got != st.want {
			t.Fatalf("step %d: after a session of %v the wait is %v, want %v", i, st.lived, got, st.want)
		}
	}
}

func TestTeardownTimeoutFollowsTTL(t *testing.T) {
	for _, c := range []struct{ ttl, want time.Duration }{
		{time.Second, 200 * time.Millisecond},
		{2 * time.Second, 400 * time.Millisecond},
		{5 * time.Second, time.Second},
		{time.Minute, 2 * time.Second},
	} {
		if got := teardownTimeout(c.ttl); got != c.want {
			t.Errorf("teardownTimeout(%v) = %v, want %v", c.ttl, got, c.want)
		}
	}
}

// A session lost while etcd was unreachable can leave its lease alive in etcd (a raft leader
// change refreshes every lease). The next session revokes it, so the old registration and
// election candidate keys do not block the elections for another TTL.
func TestNewSessionRevokesTheLostLease(t *testing.T) {
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/candidate", "n1", clientv3.WithLease(old.ID)); err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{SessionTTL: 2 * time.Second}, cli: cli, log: zaptest.NewLogger(t), lostLease: old.ID}
	s.revokeLost(ctx)
	resp, err := cli.Get(ctx, "/candidate")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatalf("the lost session's key is still there: %v", resp.Kvs)
	}
	if s.lostLease != clientv3.NoLease {
		t.Fatalf("lostLease = %x after the revoke, want none", s.lostLease)
	}
	s.revokeLost(ctx) // nothing left to revoke: no call, no panic
}

func TestGrantTimeoutFollowsTTL(t *testing.T) {
	for _, c := range []struct{ ttl, want time.Duration }{
		{time.Second, time.Second},
		{2 * time.Second, time.Second},
		{5 * time.Second, time.Second},
		{20 * time.Second, 4 * time.Second},
	} {
		if got := grantTimeout(c.ttl); got != c.want {
			t.Errorf("grantTimeout(%v) = %v, want %v", c.ttl, got, c.want)
		}
	}
}

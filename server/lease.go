package server

import (
	"context"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/wait"
)

// leaseGuard answers "may this node still act?" from the node's side, without asking etcd.
//
// The session's lease is what others judge this node's liveness by. If the process is paused
// (SIGSTOP, a long GC, a frozen VM) past the TTL, the cluster re-places its spans; when it wakes,
// its loops must not process one more event before they learn the session is gone, or two
// dispatchers would work one span. So the guard records when each keep-alive answer arrived and
// treats the lease as expired once TTL minus a safety margin has passed since the last one.
// Keep-alives come every TTL/3, so a healthy node stays well inside the bound.
type leaseGuard struct {
	ttl    time.Duration
	margin time.Duration

	mu       sync.Mutex
	deadline time.Time
	gone     bool          // the registration was deleted: the lease is lost for good
	lostCh   chan struct{} // closed when gone is set
}

func newLeaseGuard(ttl time.Duration, granted time.Time) *leaseGuard {
	margin := ttl / 5
	if margin < 500*time.Millisecond {
		margin = 500 * time.Millisecond
	}
	g := &leaseGuard{ttl: ttl, margin: margin, lostCh: make(chan struct{})}
	g.renewed(granted, ttl)
	return g
}

// renewed records a keep-alive answer received at now that granted ttl.
func (g *leaseGuard) renewed(now time.Time, ttl time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gone {
		return
	}
	if d := now.Add(ttl - g.margin); d.After(g.deadline) {
		g.deadline = d
	}
}

// Valid reports whether the lease is certainly still held at now.
func (g *leaseGuard) Valid(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return now.Before(g.deadline)
}

// watch follows the keep-alive answers of lease id until ctx ends or the lease is lost.
// clientv3 shares one keep-alive stream per lease, so this adds no traffic to the session's own.
func (g *leaseGuard) watch(ctx context.Context, cli *clientv3.Client, id clientv3.LeaseID) {
	ch, err := cli.KeepAlive(ctx, id)
	if err != nil {
		return
	}
	for resp := range ch {
		if resp == nil {
			return
		}
		g.renewed(time.Now(), time.Duration(resp.TTL)*time.Second)
	}
}

// lose marks the lease lost at once. Keep-alive answers only tell of a lost lease at the next
// keep-alive (up to a third of the TTL later), while a revoked lease deletes the registration
// at once and the maintainer re-places this node's spans within a round trip; acting in between
// would put two dispatchers on a span (server/fencing_test.go).
func (g *leaseGuard) lose() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.gone {
		g.gone = true
		g.deadline = time.Time{}
		close(g.lostCh)
	}
}

// Lost is closed once the registration is known to be gone.
func (g *leaseGuard) Lost() <-chan struct{} { return g.lostCh }

// watchRegistration loses the lease as soon as the node's registration key is deleted (lease
// revoked or expired), until ctx ends. A watch that breaks (compaction, etcd restart) is
// resumed after checking the key still exists.
func (g *leaseGuard) watchRegistration(ctx context.Context, cli *clientv3.Client, key string) {
	for ctx.Err() == nil {
		resp, err := cli.Get(ctx, key)
		if err != nil {
			if !wait.Sleep(ctx, 100*time.Millisecond) {
				return
			}
			continue
		}
		if len(resp.Kvs) == 0 {
			g.lose()
			return
		}
		for wr := range cli.Watch(ctx, key, clientv3.WithRev(resp.Header.Revision+1)) {
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					g.lose()
					return
				}
			}
			if wr.Err() != nil {
				break
			}
		}
	}
}

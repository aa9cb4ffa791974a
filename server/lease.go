package server

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
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
}

func newLeaseGuard(ttl time.Duration, granted time.Time) *leaseGuard {
	margin := ttl / 5
	if margin < 500*time.Millisecond {
		margin = 500 * time.Millisecond
	}
	g := &leaseGuard{ttl: ttl, margin: margin}
	g.renewed(granted, ttl)
	return g
}

// renewed records a keep-alive answer received at now that granted ttl.
func (g *leaseGuard) renewed(now time.Time, ttl time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
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

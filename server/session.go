package server

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// Session timing. Recovery after an etcd outage must not get slower with each outage (issue 9):
// the wait between two session attempts starts small again once a session was healthy, and no
// etcd call made while a session is torn down may wait longer than teardownTimeout, since the
// next session starts only after the teardown returned.

// sessionBackoff is the wait between two session attempts of Run.
type sessionBackoff struct {
	min, max, healthy time.Duration
	cur               time.Duration
}

// newSessionBackoff waits 200 ms after a first loss, doubling on each session that fails
// quickly up to max(1 s, TTL/5). The cap is low because each attempt is already paced by its
// lease grant's deadline (grantTimeout); a long sleep would only delay the node's return after
// etcd serves again. A session that lived longer than the TTL counts as healthy and resets the
// wait: its loss is a new incident, not a repeat of the last one.
func newSessionBackoff(ttl time.Duration) *sessionBackoff {
	b := &sessionBackoff{min: 200 * time.Millisecond, max: max(time.Second, ttl/5), healthy: ttl}
	b.cur = b.min
	return b
}

// next returns how long to wait after a session that lived for lived (0: never established).
func (b *sessionBackoff) next(lived time.Duration) time.Duration {
	if lived > b.healthy {
		b.cur = b.min
	}
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	return d
}

// teardownTimeout bounds each etcd call made while a session or a maintainer term ends
// (resign, lease revoke, candidate cleanup): a fifth of the TTL, between 200 ms and 2 s. When
// etcd does not answer within it the call is given up: the lease, and every key on it, expires
// within the TTL anyway.
func teardownTimeout(ttl time.Duration) time.Duration {
	return min(max(ttl/5, 200*time.Millisecond), 2*time.Second)
}

// grantTimeout bounds one lease grant: a fifth of the TTL, at least 1 s, at most the TTL. A
// grant sent while etcd was frozen or had no raft leader may never be answered even once etcd
// serves again (the proposal was dropped), so the attempt must end soon and be sent again: in
// the outage scenario a 5 s deadline kept nodes out for up to 2 s after etcd came back. A
// healthy etcd grants a lease within milliseconds, so 1 s leaves a wide margin.
func grantTimeout(ttl time.Duration) time.Duration { return min(max(ttl/5, time.Second), ttl) }

// newSession grants a lease with a deadline and starts a session on it. ctx ends the session's
// keep-alives; it must not carry the grant's deadline, so the grant gets its own context.
func newSession(ctx context.Context, cli *clientv3.Client, ttl time.Duration) (*concurrency.Session, error) {
	gctx, cancel := context.WithTimeout(ctx, grantTimeout(ttl))
	lease, err := cli.Grant(gctx, int64(ttl/time.Second))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("server: grant session lease: %w", err)
	}
	sess, err := concurrency.NewSession(cli, concurrency.WithLease(lease.ID), concurrency.WithContext(ctx))
	if err != nil {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout(ttl))
		_, _ = cli.Revoke(rctx, lease.ID)
		rcancel()
		return nil, fmt.Errorf("server: start session keep-alives: %w", err)
	}
	return sess, nil
}

// revokeLost revokes the lease of the previous session if it ended without a graceful stop,
// now that a new session proves etcd serves again. That session stopped all its work, but etcd
// may still hold its lease: a lease outlives the client's deadline when etcd was unreachable,
// and a raft leader change refreshes every lease to a full TTL. Until it expires, the old
// registration and the old election candidate key stay, and a candidate key created before
// every new one blocks all elections of its changefeed: recovery after an outage then took
// a further TTL whenever etcd changed leaders on its way back. Best effort, bounded: a lease
// already gone is the usual answer.
func (s *Server) revokeLost(ctx context.Context) {
	if s.lostLease == clientv3.NoLease {
		return
	}
	id := s.lostLease
	s.lostLease = clientv3.NoLease
	rctx, cancel := context.WithTimeout(ctx, teardownTimeout(s.cfg.SessionTTL))
	defer cancel()
	if _, err := s.cli.Revoke(rctx, id); err == nil {
		s.log.Info("revoked the lease of the lost session", zap.String("lease", fmt.Sprintf("%x", id)))
	}
}

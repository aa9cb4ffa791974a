package etcdutil

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/wait"
)

// Backoff bounds for re-listing after a failed read while following a prefix.
const (
	relistMinBackoff = 50 * time.Millisecond
	relistMaxBackoff = 2 * time.Second
)

// snapshotFollower turns an etcd prefix into a stream of whole snapshots. Consumers get complete
// state, never deltas, so a lost or compacted watch is repaired by simply listing again.
type snapshotFollower[T any] struct {
	cli    *clientv3.Client
	prefix string
	// load reads the current snapshot and the revision it was read at.
	load func(ctx context.Context) (T, int64, error)
	// relevant filters events; nil means every key under prefix matters.
	relevant func(key string) bool
	// same suppresses a snapshot equal to the last one sent; nil sends every snapshot.
	same func(a, b T) bool
}

// start reads the first snapshot synchronously (so a bad setup fails the caller at once) and then
// follows the prefix in a goroutine until ctx ends, when the channel is closed.
func (f *snapshotFollower[T]) start(ctx context.Context) (<-chan T, error) {
	first, rev, err := f.load(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan T, 1)
	out <- first
	go f.run(ctx, out, first, rev)
	return out, nil
}

func (f *snapshotFollower[T]) run(ctx context.Context, out chan<- T, last T, rev int64) {
	defer close(out)
	backoff := relistMinBackoff
	for {
		ok := f.follow(ctx, rev)
		if ctx.Err() != nil {
			return
		}
		if ok {
			backoff = relistMinBackoff
		} else {
			// The watch failed (compaction, lost leader, unreadable state): pause, then list again.
			if !wait.Sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, relistMaxBackoff)
		}
		snap, r, err := f.load(ctx)
		if err != nil {
			rev = 0 // nothing to resume from: the next round lists again after a pause
			continue
		}
		rev = r
		if f.same != nil && f.same(last, snap) {
			continue
		}
		select {
		case out <- snap:
			last = snap
		case <-ctx.Done():
			return
		}
	}
}

// follow watches the prefix from rev+1 and returns true at the first relevant change, false when
// the watch fails or ends. rev 0 means no snapshot to resume from, which counts as a failure.
func (f *snapshotFollower[T]) follow(ctx context.Context, rev int64) bool {
	if rev == 0 {
		return false
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := f.cli.Watch(wctx, f.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for resp := range wch {
		if resp.Err() != nil || resp.Canceled {
			return false
		}
		for _, ev := range resp.Events {
			if f.relevant == nil || f.relevant(string(ev.Kv.Key)) {
				return true
			}
		}
	}
	return false
}

package server

import (
	"context"
	"errors"
	"sync"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/etcdutil"
)

// statusWriter publishes a term's changefeed status to etcd off the maintainer loop. A publish
// is a guarded transaction, one raft commit. Done in the loop once a second, it held whatever
// arrived meanwhile: a Stopped report, and so the commit a make-before-break Move waits for,
// which put a commit round trip into the tail of the move pauses. The loop offers a status and
// goes on. Only the newest offered status matters (each one replaces the last in etcd), so
// offers made during a write collapse into the next write. A term that lost its election
// stops writing, and the loop ends on the ErrNotLeader it returns.
type statusWriter struct {
	publish func(context.Context, etcdutil.ChangefeedStatus) error
	log     *zap.Logger

	mu      sync.Mutex
	pending *etcdutil.ChangefeedStatus // offered, not yet being written
	err     error                      // ErrNotLeader once the term is over
	wake    chan struct{}
	done    chan struct{} // closed when run returns
}

func newStatusWriter(publish func(context.Context, etcdutil.ChangefeedStatus) error, log *zap.Logger) *statusWriter {
	return &statusWriter{publish: publish, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// offer hands st over for publishing and returns at once: ErrNotLeader once a write found the
// term over, else nil.
func (w *statusWriter) offer(st etcdutil.ChangefeedStatus) error {
	w.mu.Lock()
	w.pending = &st
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return w.failed()
}

// stopped is closed once run has returned: the term is over (err says so) or ctx ended.
func (w *statusWriter) stopped() <-chan struct{} { return w.done }

// failed returns ErrNotLeader once a write found the term over.
func (w *statusWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// run publishes offered statuses until ctx ends or the term is found over. A write that fails
// for another reason is logged; the next offer (a second later) writes anew.
func (w *statusWriter) run(ctx context.Context) {
	defer close(w.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		w.mu.Lock()
		st := w.pending
		w.pending = nil
		w.mu.Unlock()
		if st == nil {
			continue
		}
		err := w.publish(ctx, *st)
		switch {
		case errors.Is(err, etcdutil.ErrNotLeader):
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return
		case err != nil && ctx.Err() == nil:
			w.log.Warn("publishing status failed", zap.Error(err))
		}
	}
}

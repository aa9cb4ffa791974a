package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/etcdutil"
)

// adminRetryDelay spaces the writes of admin results etcd refused for another reason than a lost
// term (the maintainer loop no longer retries them on its next event: it does not wait for them).
const adminRetryDelay = 100 * time.Millisecond

// adminDrainTimeout bounds how long a term's end waits for its answers to be written.
const adminDrainTimeout = time.Second

// adminWriter writes a term's admin results to etcd off the maintainer loop. Each write is a
// lease grant and a guarded transaction, two raft commits: done in the loop, every finished admin
// Move held the loop (and so the next Stopped report, and the commit a make-before-break Move
// waits for) for about 10 ms on this project's machines. Results are written in the order they
// were queued; a term that lost its election stops writing and reports ErrNotLeader.
type adminWriter struct {
	lead *etcdutil.Leadership
	log  *zap.Logger
	// written counts each result once etcd holds it (the admin metric).
	written func(etcdutil.AdminResult)

	mu      sync.Mutex
	queue   []etcdutil.AdminResult
	busy    bool  // a write of results taken from queue is in progress
	err     error // ErrNotLeader once the term is over; nothing more is written
	wake    chan struct{}
	drained chan struct{} // closed and replaced whenever queue is empty and no write is in progress
}

func newAdminWriter(lead *etcdutil.Leadership, log *zap.Logger, written func(etcdutil.AdminResult)) *adminWriter {
	return &adminWriter{lead: lead, log: log, written: written,
		wake: make(chan struct{}, 1), drained: make(chan struct{})}
}

// add queues results for writing.
func (w *adminWriter) add(rs []etcdutil.AdminResult) {
	if len(rs) == 0 {
		return
	}
	w.mu.Lock()
	w.queue = append(w.queue, rs...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// failed returns ErrNotLeader once a write found the term over.
func (w *adminWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// wait blocks until every result queued so far is written, the term is over (its error), or ctx
// ends. A resign waits so that its own answer is in etcd before the term ends.
func (w *adminWriter) wait(ctx context.Context) error {
	for {
		w.mu.Lock()
		idle, err, drained := len(w.queue) == 0 && !w.busy, w.err, w.drained
		w.mu.Unlock()
		if err != nil || idle {
			return err
		}
		select {
		case <-drained:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// run writes queued results until ctx ends or the term is found over.
func (w *adminWriter) run(ctx context.Context) {
	for {
		w.mu.Lock()
		batch := w.queue
		w.busy = len(batch) > 0
		if !w.busy {
			close(w.drained)
			w.drained = make(chan struct{})
		}
		w.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
				continue
			}
		}
		n, err := w.lead.PublishAdminResults(ctx, batch)
		for _, res := range batch[:n] {
			w.written(res)
		}
		w.mu.Lock()
		w.queue = w.queue[n:]
		w.busy = false
		if errors.Is(err, etcdutil.ErrNotLeader) {
			w.err = err
			close(w.drained)
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("writing admin results failed; will retry", zap.String("request", batch[0].ID),
				zap.Int("results", len(batch)), zap.Error(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(adminRetryDelay):
			}
		}
	}
}

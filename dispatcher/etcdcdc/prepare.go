package etcdcdc

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
)

// DefaultPrepareBuffer: the most events a prepared dispatcher holds before its commit.
const DefaultPrepareBuffer = 100_000

// maxWarmup bounds how long a prepared dispatcher says it is not warm (Warm): an idle range
// may never show that its watch caught up, and the Move waits for the warm report.
const maxWarmup = time.Second

// prepared is an etcd dispatcher warming up (dispatcher.Preparer): it watches the span's source
// range from its start revision and buffers every batch, writing nothing and opening no sink
// writer (so no fence is claimed). Commit(F) keeps what lies above F and hands it, and the
// running watch, to a working dispatcher started from F. The buffer is bounded: past the bound,
// or when the watch fails (the revision compacted, the source gone), it is dropped and the
// commit reads the source again from F+1, exactly as New would.
//
// Why the watch is handed over rather than opened again at F+1: etcd sends a watch that starts
// below its current revision nothing live until a sync loop (every 100 ms) has sent it the
// history, so a new watch at commit cost the span up to 100 ms of pause. For the same reason the
// prepared dispatcher is warm (dispatcher.Warmer), and the node reports it prepared, only once
// its own watch has caught up: the origin keeps working meanwhile.
type prepared struct {
	f        *Factory
	dc       heartbeatpb.DispatcherConfig
	rng      keyRange
	log      *zap.Logger
	stop     context.CancelFunc // cancels the watch (Close, or a commit that does not take it)
	done     chan struct{}      // the buffering goroutine returned
	handover chan struct{}      // closed by Commit: stop consuming, leave the watch running
	wch      clientv3.WatchChan
	warmBy   time.Time

	mu      sync.Mutex
	gate    *progressGate // what the watch delivered, handed to the working dispatcher
	batches []batch
	events  int
	through int64 // every event of the range in (dc.StartTs, through] is in batches
	dropped bool
	spent   bool
}

// Prepare starts the watch of a prepared dispatcher.
func (f *Factory) Prepare(dc heartbeatpb.DispatcherConfig, table heartbeatpb.TableConfig) (dispatcher.Prepared, error) {
	rng, err := f.check(dc, table)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &prepared{f: f, dc: dc, rng: rng, stop: cancel, done: make(chan struct{}), handover: make(chan struct{}),
		through: int64(dc.StartTs), gate: newProgressGate(int64(dc.StartTs)), warmBy: time.Now().Add(maxWarmup),
		log: f.log.WithLazy(idField("dispatcher", dc.Id), zap.String("phase", "prepared"))}
	if rng.empty() {
		close(p.done) // no key can ever be in the range: nothing to buffer
		return p, nil
	}
	p.wch = f.streams.watch(ctx, string(rng.start), append(watchOptions(rng, int64(dc.StartTs)), clientv3.WithCreatedNotify())...)
	go p.watch(ctx)
	return p, nil
}

func (p *prepared) ID() heartbeatpb.DispatcherID { return p.dc.Id }

// Warm reports whether a commit now would find the watch live: it caught up with the history
// since the start revision, or failed (the commit then reads again anyway), or the warm-up's
// bound passed.
func (p *prepared) Warm() bool {
	if p.rng.empty() || time.Now().After(p.warmBy) {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped || p.gate.caughtUp
}

func (p *prepared) limit() int {
	if n := p.f.cfg.PrepareBuffer; n > 0 {
		return n
	}
	return DefaultPrepareBuffer
}

// watch buffers the range above the start revision until the commit, the bound or Close.
func (p *prepared) watch(ctx context.Context) {
	defer close(p.done)
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case <-p.handover:
			return
		case resp, ok = <-p.wch:
		case <-p.f.mode.ticks():
			// Idle spans advance by reads (progressmode.go): no notification comes to check on.
			p.checkQuiet(ctx)
			continue
		}
		if !ok {
			if ctx.Err() == nil {
				p.drop("source watch ended")
			}
			return
		}
		if err := resp.Err(); err != nil || resp.CompactRevision != 0 {
			p.drop("source watch failed", zap.Error(err), zap.Int64("compact-revision", resp.CompactRevision))
			return
		}
		if resp.IsProgressNotify() {
			p.checkQuiet(ctx)
			continue
		}
		p.mu.Lock()
		switch {
		case resp.Created:
			p.gate.created(resp.Header.Revision)
		case len(resp.Events) > 0:
			b := eventBatch(resp.Events)
			p.gate.events(b.through)
			p.batches, p.events, p.through = append(p.batches, b), p.events+len(b.events), b.through
		}
		full := p.events > p.limit()
		p.mu.Unlock()
		if full {
			p.drop("buffer full", zap.Int("limit", p.limit()))
			return
		}
	}
}

// checkQuiet, on a progress notification while the watch has not caught up, reads whether the
// range changed between the last event delivered and the watch's creation: an idle range
// shows it caught up no other way, and would wait out maxWarmup. The notification itself is
// not trusted (an etcd without the fix for etcd-io/etcd#15220 may send one ahead of its
// watch, watch.go); the working dispatcher takes the gate over with what it learnt.
func (p *prepared) checkQuiet(ctx context.Context) {
	p.mu.Lock()
	from, to, ok := p.gate.waiting()
	p.mu.Unlock()
	if !ok {
		return
	}
	if _, quiet := quietRange(ctx, p.f.cli, p.rng, p.log, from, to); !quiet {
		return
	}
	p.mu.Lock()
	p.gate.quietThrough(to)
	p.mu.Unlock()
}

func (p *prepared) drop(why string, fields ...zap.Field) {
	p.stop()
	p.mu.Lock()
	p.batches, p.events, p.dropped = nil, 0, true
	p.mu.Unlock()
	p.log.Info("prepared buffer dropped; the commit reads the source again ("+why+")", fields...)
}

// Commit starts the working dispatcher from final with what was buffered above it, on the
// running watch.
func (p *prepared) Commit(final uint64) (dispatcher.Dispatcher, error) {
	if p.spent {
		return nil, fmt.Errorf("%w: dispatcher %s: committed twice", dispatcher.ErrInvalid, dispatcher.FormatID(p.dc.Id))
	}
	close(p.handover)
	<-p.done
	p.spent = true
	dc := p.dc
	dc.StartTs = final
	p.mu.Lock()
	defer p.mu.Unlock()
	F := int64(final)
	if p.dropped || p.wch == nil || F < int64(p.dc.StartTs) {
		// Nothing usable (or F below what was read from, which the Move never asks): read
		// from F+1.
		p.stop()
		return p.f.start(newDispatcher(p.f, dc, p.rng)), nil
	}
	var keep []batch
	for _, b := range p.batches {
		if b.through <= F {
			continue
		}
		keep = append(keep, b.above(F))
	}
	// The watch still owes what it has not delivered, in order; what it owes at or below F the
	// working dispatcher skips (the origin wrote it).
	p.gate.last = max(p.gate.last, F)
	p.gate.quietThrough(p.gate.last)
	p.log.Debug("prepared dispatcher committed", zap.Uint64("final", final), zap.Int("batches", len(keep)),
		zap.Int64("through", p.through))
	return p.f.start(newDispatcherFrom(p.f, dc, p.rng, keep,
		&handedWatch{ch: p.wch, cancel: p.stop, gate: p.gate, from: max(p.through, F)})), nil
}

// Close abandons the prepared dispatcher; nothing was written.
func (p *prepared) Close() error {
	if p.spent {
		return nil // committed (the working dispatcher has the watch now) or closed already
	}
	p.spent = true
	p.stop()
	<-p.done
	return nil
}

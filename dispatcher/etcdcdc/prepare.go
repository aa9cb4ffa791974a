package etcdcdc

import (
	"context"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
)

// DefaultPrepareBuffer: the most events a prepared dispatcher holds before its commit.
const DefaultPrepareBuffer = 100_000

// prepared is an etcd dispatcher warming up (dispatcher.Preparer): it watches the span's source
// range from its start revision and buffers every batch, writing nothing and opening no sink
// writer (so no fence is claimed). Commit(F) keeps what lies above F and hands it to a working
// dispatcher started from F, whose watch resumes above the last revision buffered. The buffer is
// bounded: past the bound, or when the watch fails (the revision compacted, the source gone),
// it is dropped and the commit reads the source again from F+1, exactly as New would.
type prepared struct {
	f    *Factory
	dc   heartbeatpb.DispatcherConfig
	rng  keyRange
	log  *zap.Logger
	stop context.CancelFunc
	done chan struct{}

	mu      sync.Mutex
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
	p := &prepared{f: f, dc: dc, rng: rng, stop: cancel, done: make(chan struct{}), through: int64(dc.StartTs),
		log: f.log.With(zap.String("dispatcher", dispatcher.FormatID(dc.Id)), zap.String("phase", "prepared"))}
	if rng.empty() {
		close(p.done) // no key can ever be in the range: nothing to buffer
		return p, nil
	}
	go p.watch(ctx)
	return p, nil
}

func (p *prepared) ID() heartbeatpb.DispatcherID { return p.dc.Id }

func (p *prepared) limit() int {
	if n := p.f.cfg.PrepareBuffer; n > 0 {
		return n
	}
	return DefaultPrepareBuffer
}

// watch buffers the range above the start revision until the commit or the bound.
func (p *prepared) watch(ctx context.Context) {
	defer close(p.done)
	for resp := range p.f.cli.Watch(ctx, string(p.rng.start), watchOptions(p.rng, int64(p.dc.StartTs))...) {
		if err := resp.Err(); err != nil || resp.CompactRevision != 0 {
			p.drop("source watch failed", zap.Error(err), zap.Int64("compact-revision", resp.CompactRevision))
			return
		}
		p.mu.Lock()
		switch {
		case resp.IsProgressNotify():
			// Not trusted here: an etcd without the fix for etcd-io/etcd#15220 may answer a
			// progress request with a revision its watch has not yet caught up to (watch.go),
			// and the commit resumes above `through`. Events alone move it; the working
			// dispatcher's guarded watch takes the idle stretch after the commit.
		case len(resp.Events) > 0:
			b := eventBatch(resp.Events)
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

func (p *prepared) drop(why string, fields ...zap.Field) {
	p.mu.Lock()
	p.batches, p.events, p.dropped = nil, 0, true
	p.mu.Unlock()
	p.log.Info("prepared buffer dropped; the commit reads the source again ("+why+")", fields...)
}

// Commit ends the buffering watch and starts the working dispatcher from final with what was
// buffered above it.
func (p *prepared) Commit(final uint64) (dispatcher.Dispatcher, error) {
	if p.spent {
		return nil, fmt.Errorf("%w: dispatcher %s: committed twice", dispatcher.ErrInvalid, dispatcher.FormatID(p.dc.Id))
	}
	p.stop()
	<-p.done
	p.spent = true
	dc := p.dc
	dc.StartTs = final
	p.mu.Lock()
	defer p.mu.Unlock()
	F := int64(final)
	if p.dropped || p.through < F || F < int64(p.dc.StartTs) {
		// Nothing usable above F (or F below what was read from, which the Move never asks):
		// read from F+1.
		return p.f.start(newDispatcher(p.f, dc, p.rng)), nil
	}
	var keep []batch
	for _, b := range p.batches {
		if b.through <= F {
			continue
		}
		i := 0
		for i < len(b.events) && b.events[i].Revision <= F {
			i++
		}
		keep = append(keep, batch{events: b.events[i:], through: b.through})
	}
	p.log.Debug("prepared dispatcher committed", zap.Uint64("final", final), zap.Int("batches", len(keep)),
		zap.Int64("through", p.through))
	return p.f.start(newDispatcherFrom(p.f, dc, p.rng, keep, p.through)), nil
}

// Close abandons the prepared dispatcher; nothing was written.
func (p *prepared) Close() error {
	p.spent = true
	p.stop()
	<-p.done
	return nil
}

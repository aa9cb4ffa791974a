package etcdcdc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// Tuning of one dispatcher.
const (
	// maxWriteEvents: the most events gathered for one sink Write.
	maxWriteEvents = 4096
	// stopWait: how long Stop waits for the write in flight before it asks to be called again.
	stopWait   = 300 * time.Millisecond
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

type state int32

const (
	working state = iota
	stopping
	stopped
)

// Dispatcher replicates one span of the source to the sink. One goroutine of its own reads the
// watch and writes what it read: while it writes, the client buffers what etcd sends (per
// watch), and what arrived meanwhile goes in the next write, gathered. Poll, Stop and Close
// only read what it published. (A reader and a writer on two goroutines with a channel between
// them were 8 KiB of stack and a channel more per dispatcher: at 50,000 dispatchers a node, a
// third of its goroutines and ~400 MB of stack, made anew after every failover.)
type Dispatcher struct {
	f      *Factory
	dc     heartbeatpb.DispatcherConfig
	rng    keyRange
	writer SpanWriter
	log    *zap.Logger

	readCtx    context.Context
	cancelRead context.CancelFunc
	// writeCtx outlives Stop: a transaction in flight must end with a known outcome.
	writeCtx    context.Context
	cancelWrite context.CancelFunc
	stopc       chan struct{}
	done        chan struct{}
	// pending: what the watch delivered and the sink has not been handed yet (run's goroutine
	// only); pendingSince below says since when.
	pending batch

	state      state
	checkpoint atomic.Int64 // durable in the sink
	events     atomic.Uint64
	// seen is the highest revision the watch delivered; pendingSince when the oldest change not
	// yet durable was delivered (UnixNano; 0: none). Both are read by Factory.Lag.
	seen         atomic.Int64
	pendingSince atomic.Int64
	// The last write: when it became durable and how long its oldest change had waited
	// since the watch delivered it (UnixNano, nanoseconds).
	lastDurable, lastLatency atomic.Int64

	mu       sync.Mutex
	fatal    error // compacted start revision, deposed: never clears
	writeErr error
	watchErr error

	rate    rateMeter
	skipped bool // skipFirstEvent (a mutation failpoint) dropped an event

	// preload: batches a prepared watch read above the start revision (prepare.go), written
	// before its watch, handed over, goes on above handed.from.
	preload []batch
	handed  *handedWatch
}

// handedWatch is a prepared dispatcher's running watch, taken over at its commit
// (prepare.go): its channel, what cancels it, its gate, and the revision its delivered events
// and the start revision reach.
type handedWatch struct {
	ch     clientv3.WatchChan
	cancel context.CancelFunc
	gate   *progressGate
	from   int64
}

func newDispatcher(f *Factory, dc heartbeatpb.DispatcherConfig, rng keyRange) *Dispatcher {
	return newDispatcherFrom(f, dc, rng, nil, nil)
}

// newDispatcherFrom starts a dispatcher from dc.StartTs whose first batches are preload (all
// above the start revision, contiguous, through h.from) and which reads on from h's watch;
// without h, it opens its own watch above the start revision.
func newDispatcherFrom(f *Factory, dc heartbeatpb.DispatcherConfig, rng keyRange, preload []batch, h *handedWatch) *Dispatcher {
	d := &Dispatcher{
		f: f, dc: dc, rng: rng,
		writer: f.cfg.Sink.Open(Owner{Node: f.cfg.Node, Changefeed: f.cfg.Changefeed, ID: dc.Id, Span: dc.Span, Start: int64(dc.StartTs)}),
		// Lazy: the fields are encoded only when the dispatcher logs, which most never do (eager
		// encoding was a tenth of re-creating a node's dispatchers after a failover).
		log: f.log.WithLazy(idField("dispatcher", dc.Id), zap.Stringer("span", span.KeyOf(dc.Span)),
			zap.Stringer("source-range", rng)),
		stopc: make(chan struct{}), done: make(chan struct{}),
		preload: preload, handed: h,
	}
	d.checkpoint.Store(int64(dc.StartTs))
	d.readCtx, d.cancelRead = context.WithCancel(context.Background())
	d.writeCtx, d.cancelWrite = context.WithCancel(context.Background())
	go d.run()
	return d
}

// ID returns the dispatcher's ID.
func (d *Dispatcher) ID() heartbeatpb.DispatcherID { return d.dc.Id }

// Span returns the dispatcher's span.
func (d *Dispatcher) Span() heartbeatpb.TableSpan { return d.dc.Span }

// Mode is always the default mode: the etcd dispatcher has no redo.
func (d *Dispatcher) Mode() heartbeatpb.Mode { return d.dc.Mode }

// Poll reports the durable checkpoint and the events per second written lately.
func (d *Dispatcher) Poll(now time.Time) (checkpointTs, load uint64) {
	if d.state != working {
		return uint64(d.checkpoint.Load()), 0
	}
	return uint64(d.checkpoint.Load()), d.rate.sample(now, d.events.Load())
}

// Err says why the dispatcher cannot make progress, or nil.
func (d *Dispatcher) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.fatal != nil:
		return d.fatal
	case d.writeErr != nil:
		return d.writeErr
	case d.watchErr != nil:
		return d.watchErr
	}
	return d.f.sourceErr()
}

// Stop ends the watch and waits for the dispatcher's goroutine: its write in flight, or the
// settling of a failed one. While that lasts it returns an error and is called again; once the
// goroutine is done the durable checkpoint is final and nothing is written afterwards.
func (d *Dispatcher) Stop(time.Time) (uint64, error) {
	if d.state == working {
		d.f.forget(d)
		d.state = stopping
		close(d.stopc)
		d.cancelRead()
	}
	if d.state == stopping {
		select {
		case <-d.done:
			d.state = stopped
			d.log.Debug("dispatcher stopped", zap.Int64("final", d.checkpoint.Load()))
		case <-time.After(stopWait):
			why := "a sink write is in flight"
			if err := d.Err(); err != nil {
				why = "a failed sink write is unresolved: " + err.Error()
			}
			return 0, fmt.Errorf("etcdcdc: dispatcher %s: not stopped yet, %s; stop again later", dispatcher.FormatID(d.dc.Id), why)
		}
	}
	return uint64(d.checkpoint.Load()), nil
}

// Close stops everything, abandoning a write that cannot finish (the fence refuses it once a
// successor claims the span).
func (d *Dispatcher) Close() error {
	d.f.forget(d)
	if d.state == working {
		close(d.stopc)
	}
	d.state = stopped
	d.cancelRead()
	d.cancelWrite()
	<-d.done
	return nil
}

func (d *Dispatcher) setErr(slot *error, err error) {
	d.mu.Lock()
	*slot = err
	d.mu.Unlock()
}

// run claims the span at the sink (an empty write, so a successor fences its predecessor before
// it replays anything), writes the preload, then watches the span's source range strictly above
// the start revision and writes what it sees, until Stop or Close. A broken watch resumes above
// the last revision delivered.
func (d *Dispatcher) run() {
	defer close(d.done)
	if h := d.handed; h != nil {
		// Whatever ends the run ends the handed watch: Stop and Close cancel readCtx.
		defer context.AfterFunc(d.readCtx, h.cancel)()
		defer h.cancel()
	}
	if !d.writeBatch(nil, int64(d.dc.StartTs)) {
		return
	}
	for _, b := range d.preload {
		if !d.push(b) {
			return
		}
	}
	d.preload = nil
	if !d.flush() {
		return
	}
	rev := int64(d.dc.StartTs)
	backoff := minBackoff
	if h := d.handed; h != nil {
		d.handed = nil
		rev = max(rev, h.from)
		next, err := d.consume(d.readCtx, h.ch, h.gate, rev, d)
		h.cancel()
		rev = max(rev, next)
		if !d.flush() || !d.watchEnded(err, &backoff) {
			return
		}
	}
	for d.readCtx.Err() == nil {
		if d.rng.empty() {
			// No key can ever be in the range: the source's revision is the checkpoint.
			if r := d.f.sourceRevision(); r > rev && d.push(batch{through: r}) && d.flush() {
				rev = r
			}
			d.sleep(d.readCtx, d.f.cfg.ProgressInterval)
			continue
		}
		next, err := d.watch(rev, d)
		if next > rev {
			rev, backoff = next, minBackoff
		}
		if !d.flush() || !d.watchEnded(err, &backoff) {
			return
		}
	}
}

// watchEnded handles why a watch ended and reports whether to watch again: not after a
// compacted start revision (the span stops there), and after a backoff on a failure.
func (d *Dispatcher) watchEnded(err error, backoff *time.Duration) bool {
	if err == nil || d.readCtx.Err() != nil {
		return true
	}
	if errors.Is(err, rpctypes.ErrCompacted) {
		d.setErr(&d.fatal, err)
		d.log.Error("start revision compacted on the source; the span stops here", zap.Error(err))
		return false
	}
	d.setErr(&d.watchErr, err)
	d.f.cfg.DataPlane.ReportSourceError(err)
	d.log.Warn("source watch failed; retrying", zap.Error(err), zap.Duration("backoff", *backoff))
	d.sleep(d.readCtx, *backoff)
	*backoff = min(2**backoff, maxBackoff)
	return true
}

// writeBatch writes until it succeeds (true), or until the dispatcher is stopped, deposed or
// closed (false, after settling a failed write so nothing of it lands later).
func (d *Dispatcher) writeBatch(events []Event, through int64) bool {
	backoff := minBackoff
	for {
		err := d.writer.Write(d.writeCtx, events, through)
		if err == nil {
			d.setErr(&d.writeErr, nil)
			return true
		}
		if errors.Is(err, ErrFenced) {
			d.setErr(&d.fatal, err)
			d.log.Warn("deposed at the sink; writing stops", zap.Error(err))
			d.cancelRead()
			return false
		}
		d.setErr(&d.writeErr, err)
		d.f.cfg.DataPlane.ReportSinkError(err)
		d.log.Warn("sink write failed; checkpoint held, retrying", zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-d.stopc:
			d.settle()
			return false
		case <-d.writeCtx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// settle retries the writer's Settle until it succeeds or the dispatcher is closed.
func (d *Dispatcher) settle() {
	backoff := minBackoff
	for {
		err := d.writer.Settle(d.writeCtx)
		if err == nil || errors.Is(err, ErrFenced) || d.writeCtx.Err() != nil {
			return
		}
		d.setErr(&d.writeErr, err)
		d.sleep(d.writeCtx, backoff)
		backoff = min(2*backoff, maxBackoff)
	}
}

// eventBytes is what the events carry: keys plus values.
func eventBytes(events []Event) int {
	n := 0
	for _, ev := range events {
		n += len(ev.Key) + len(ev.Value)
	}
	return n
}

// idField is id as a log field, formatted only if a line carrying it is written.
func idField(key string, id heartbeatpb.DispatcherID) zap.Field {
	return zap.Stringer(key, loggedID(id))
}

type loggedID heartbeatpb.DispatcherID

func (id loggedID) String() string { return dispatcher.FormatID(heartbeatpb.DispatcherID(id)) }

func (d *Dispatcher) sleep(ctx context.Context, t time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(t):
	}
}

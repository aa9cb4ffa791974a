package etcdcdc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/heartbeatpb"
)

// Defaults of a Factory.
const (
	// DefaultProgressInterval: how often the source is asked for a progress notification, so
	// idle spans advance.
	DefaultProgressInterval = 200 * time.Millisecond
	// progressPerWatch stretches the progress interval with the node's watches: etcd answers a
	// RequestProgress with one notification per watch on the stream, and each goes through the
	// client's one dispatch loop to its dispatcher. At 3,333 watches a node every 200 ms, the
	// bursts held the node's other watches back: make-before-break pauses had a p99 of 0.18 s
	// at 10,000 spans on 3 nodes, 0.034 s with one request a second (tests/bench moves). So a
	// node asks at most about 3,333 notifications a second, and an idle span's checkpoint
	// moves every max(ProgressInterval, watches x 300 us) (1 s at 3,333 watches).
	progressPerWatch = 300 * time.Microsecond
	// DefaultProbeInterval: how often the source is read to learn it answers.
	DefaultProbeInterval = time.Second
	probeTimeout         = 2 * time.Second
)

// FactoryConfig configures the etcd dispatchers of one changefeed on one node.
type FactoryConfig struct {
	Node, Changefeed string
	Source           *etcdutil.SourceConfig
	SourceTLS        *tls.Config
	Sink             Sink // the factory does not close it
	ProgressInterval time.Duration
	ProbeInterval    time.Duration
	Logger           *zap.Logger
	// DataPlane receives the replicated events and bytes, the source and sink errors, and
	// the function the node reads the lag with.
	DataPlane dispatcher.DataPlane
	// PrepareBuffer: the most events a prepared dispatcher buffers before its commit (0 is
	// DefaultPrepareBuffer); beyond it the buffer is dropped and the commit reads the source
	// again from the final revision.
	PrepareBuffer int
	// pinProgress fixes how idle spans advance instead of asking the source's version (tests).
	pinProgress progressPin
}

// Factory creates the etcd dispatchers of one changefeed on one node. It owns the source
// client, asks the source for progress notifications and probes it.
type Factory struct {
	cfg    FactoryConfig
	cli    *clientv3.Client
	log    *zap.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	srcErr error
	// lastOK is when the source last answered a probe: while it does not, the lag in seconds
	// counts from then.
	lastOK time.Time
	live   map[*Dispatcher]struct{} // working dispatchers, for the lag
	srcRev atomic.Int64
	// streams spreads the watches over several watch streams of cli (streams.go).
	streams *streamPicker
	// mode: whether idle spans advance by progress requests or by reads (progressmode.go).
	mode *progressMode
	bg   sync.WaitGroup // the version checks under way (progressmode.go)
}

// NewFactory connects to the source without waiting for it: an unreachable source is an error
// of every span (Err), retried, never a failed start.
func NewFactory(cfg FactoryConfig) (*Factory, error) {
	if cfg.Source == nil || cfg.Sink == nil {
		return nil, fmt.Errorf("%w: etcd dispatcher: source and sink are required", dispatcher.ErrInvalid)
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: cfg.Source.Endpoints, TLS: cfg.SourceTLS, DialTimeout: probeTimeout, Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcdcdc: source etcd at %v: %w", cfg.Source.Endpoints, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Factory{cfg: cfg, cli: cli, log: cfg.Logger, cancel: cancel, done: make(chan struct{}),
		lastOK: time.Now(), live: map[*Dispatcher]struct{}{}, streams: newStreamPicker(cli), mode: newProgressMode()}
	if cfg.pinProgress != pinNone {
		f.mode.pin(cfg.pinProgress == pinReads)
	}
	if cfg.DataPlane.SetLag != nil {
		cfg.DataPlane.SetLag(f.Lag)
	}
	go f.run(ctx)
	return f, nil
}

// New creates the dispatcher of one span; it starts watching at once.
func (f *Factory) New(dc heartbeatpb.DispatcherConfig, table heartbeatpb.TableConfig) (dispatcher.Dispatcher, error) {
	rng, err := f.check(dc, table)
	if err != nil {
		return nil, err
	}
	return f.start(newDispatcher(f, dc, rng)), nil
}

// start registers a new dispatcher for the lag.
func (f *Factory) start(d *Dispatcher) *Dispatcher {
	f.mu.Lock()
	f.live[d] = struct{}{}
	f.mu.Unlock()
	return d
}

// check validates the config of a dispatcher and returns its source range.
func (f *Factory) check(dc heartbeatpb.DispatcherConfig, table heartbeatpb.TableConfig) (keyRange, error) {
	if dc.Mode != heartbeatpb.ModeDefault {
		return keyRange{}, fmt.Errorf("%w: dispatcher %s: the etcd dispatcher has no %s mode", dispatcher.ErrInvalid,
			dispatcher.FormatID(dc.Id), dispatcher.ModeName(dc.Mode))
	}
	if dc.Span.TableId != table.TableId {
		return keyRange{}, fmt.Errorf("%w: dispatcher %s: span of table %d, table config of %d", dispatcher.ErrInvalid,
			dispatcher.FormatID(dc.Id), dc.Span.TableId, table.TableId)
	}
	if dc.StartTs > 1<<62 {
		return keyRange{}, fmt.Errorf("%w: dispatcher %s: start ts %d is no etcd revision (a TSO from a simulated changefeed?)",
			dispatcher.ErrInvalid, dispatcher.FormatID(dc.Id), dc.StartTs)
	}
	rng, err := SourceRange(f.cfg.Source, dc.Span)
	if err != nil {
		return keyRange{}, fmt.Errorf("%w: dispatcher %s: %v", dispatcher.ErrInvalid, dispatcher.FormatID(dc.Id), err)
	}
	return rng, nil
}

// forget drops a stopped or closed dispatcher from the lag.
func (f *Factory) forget(d *Dispatcher) {
	f.mu.Lock()
	delete(f.live, d)
	f.mu.Unlock()
}

// recentWrite: how long the latency of a dispatcher's last write counts in its lag; after that
// an idle span lags 0.
const recentWrite = time.Second

// Lag is the worst lag over the working dispatchers. Revisions: the newest source revision
// known (the last probe, or the highest a watch delivered) minus the checkpoint. Seconds: etcd
// events carry no time, so it is measured from when this node saw a change (its watch response
// arrived) to when it became durable: the age of the oldest change seen and not yet durable, or
// the wait of the oldest change of the last write if that ended within recentWrite (a scrape
// between two quick writes would otherwise always read 0); while the source does not answer,
// the time since it last did, if that is more.
func (f *Factory) Lag(now time.Time) dispatcher.Lag {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lag dispatcher.Lag
	head := f.srcRev.Load()
	for d := range f.live {
		cp := d.checkpoint.Load()
		lag.Revisions = max(lag.Revisions, max(head, d.seen.Load())-cp)
		if since := d.pendingSince.Load(); since != 0 {
			lag.Seconds = max(lag.Seconds, now.Sub(time.Unix(0, since)).Seconds())
		}
		if at := d.lastDurable.Load(); at != 0 && now.Sub(time.Unix(0, at)) < recentWrite {
			lag.Seconds = max(lag.Seconds, time.Duration(d.lastLatency.Load()).Seconds())
		}
	}
	if f.srcErr != nil && len(f.live) > 0 {
		lag.Seconds = max(lag.Seconds, now.Sub(f.lastOK).Seconds())
	}
	return lag
}

// Flush has nothing to write (a dispatcher reports only what its writes made durable); it
// returns the sink's standing failure, so the node's sink health shows it.
func (f *Factory) Flush() error { return f.cfg.Sink.Err() }

// Close stops the progress requests and the probe and closes the source client. Close the
// dispatchers first.
func (f *Factory) Close() error {
	f.cancel()
	<-f.done
	f.bg.Wait()
	return errors.Join(f.streams.close(), f.cli.Close())
}

// Client is the source client, for checks that read the source the way the dispatchers do.
func (f *Factory) Client() *clientv3.Client { return f.cli }

func (f *Factory) sourceErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.srcErr
}

// sourceRevision is the source's revision at the last successful probe.
func (f *Factory) sourceRevision() int64 { return f.srcRev.Load() }

// run asks the source for progress notifications and probes it until Close.
func (f *Factory) run(ctx context.Context) {
	defer close(f.done)
	progress := time.NewTimer(f.progressEvery())
	defer progress.Stop()
	probe := time.NewTicker(f.cfg.ProbeInterval)
	defer probe.Stop()
	f.probe(ctx)
	f.checkVersions(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-progress.C:
			if f.mode.byReads.Load() {
				f.mode.ticked()
			} else {
				// Each watch stream answers every watcher on it.
				f.streams.requestProgress(ctx)
			}
			progress.Reset(f.progressEvery())
		case <-probe.C:
			f.probe(ctx)
			f.checkVersions(ctx)
		}
	}
}

// progressEvery is the wait before the next progress request: ProgressInterval, stretched by
// the watches it would answer (progressPerWatch).
func (f *Factory) progressEvery() time.Duration {
	f.mu.Lock()
	n := len(f.live)
	f.mu.Unlock()
	return progressInterval(f.cfg.ProgressInterval, n, f.mode.byReads.Load())
}

func progressInterval(floor time.Duration, watches int, byReads bool) time.Duration {
	per := progressPerWatch
	if byReads {
		per = readPerWatch
	}
	return max(floor, time.Duration(watches)*per)
}

func (f *Factory) probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	resp, err := f.cli.Get(pctx, "\x00", clientv3.WithCountOnly())
	if ctx.Err() != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.cfg.DataPlane.ReportSourceError(err)
		if f.srcErr == nil {
			f.log.Warn("source etcd unreachable; spans hold their checkpoints and retry", zap.Strings("endpoints", f.cfg.Source.Endpoints), zap.Error(err))
		}
		f.srcErr = fmt.Errorf("etcdcdc: source etcd at %v unreachable (retrying): %w", f.cfg.Source.Endpoints, err)
		return
	}
	if f.srcErr != nil {
		f.log.Info("source etcd answers again", zap.Strings("endpoints", f.cfg.Source.Endpoints))
	}
	f.srcErr, f.lastOK = nil, time.Now()
	f.srcRev.Store(resp.Header.Revision)
}

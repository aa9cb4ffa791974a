package dispatcher

import (
	"errors"
	"fmt"
	"math/big"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
	"github.com/tidemark/tidemark/ts"
)

// Defaults of the simulated dispatcher.
const (
	DefaultLag      = 200 * time.Millisecond
	DefaultInterval = 500 * time.Millisecond
	// DefaultRecordsPerSecond bounds what one factory's dispatchers append to their sink
	// together: about 4 MB/s of records. Below DefaultRecordsPerSecond*DefaultInterval (10,000)
	// dispatchers a node the budget changes nothing; above, each dispatcher records (and so
	// advances its checkpoint) less often, in proportion, instead of the sink growing with the
	// number of spans.
	DefaultRecordsPerSecond = 20000
)

// SimConfig is what a simulated dispatcher needs besides its DispatcherConfig.
type SimConfig struct {
	Node, Changefeed string
	Sink             Sink
	// Lag: the checkpoint trails the clock by this much; default DefaultLag.
	Lag time.Duration
	// Interval: the least time between two advances; default DefaultInterval.
	Interval time.Duration
	Logger   *zap.Logger
	// Replicate, when set, hands the span's changes in (from, to] to the sink before the
	// dispatcher claims that range with its record; an error holds the checkpoint as a refused
	// Append does. The seeded simulator (tests/sim) replicates its model of a source's event log
	// this way, so its checker can verify the data and not only the ranges.
	Replicate func(from, to uint64) error
	// pace is shared by the dispatchers of one factory; nil for a dispatcher on its own.
	pace *simPace
}

// simPace spreads a factory's record budget over its open dispatchers.
type simPace struct {
	perSecond int
	open      int
}

// interval is the least time between two records of one dispatcher: the configured interval,
// or longer when the open dispatchers would exceed the budget together.
func (p *simPace) interval(min time.Duration) time.Duration {
	if p == nil || p.perSecond <= 0 {
		return min
	}
	return max(min, time.Duration(int64(p.open)*int64(time.Second)/int64(p.perSecond)))
}

// simState is the lifecycle of a simulated dispatcher; it only moves forward.
type simState uint8

const (
	simWorking simState = iota
	simStopped
	simClosed
)

// Sim is the built-in simulated dispatcher: it pretends to replicate its span by advancing its
// checkpoint behind the clock and appending every processed ts range to a sink.
type Sim struct {
	// cfg is shared by the dispatchers of one factory: a copy each was 88 B of every
	// dispatcher, a sixth of a worker's memory at 333,000 dispatchers.
	cfg *SimConfig
	// id, span and mode, not the whole DispatcherConfig: its start ts is only the first
	// checkpoint, and the fields below pack into the mode's padding, so a Sim is 112 B where it
	// was 144 (a million of them is a worker's whole budget).
	id         heartbeatpb.DispatcherID
	span       heartbeatpb.TableSpan
	load       uint64
	checkpoint uint64
	// lastAdvance: UnixNano of the last advance; 0 until the first, so the first Poll advances
	// at once.
	lastAdvance int64
	mode        heartbeatpb.Mode
	state       simState
	// sinkRefused: the last append was refused, so the warning is logged once per outage
	// rather than on every poll of every dispatcher.
	sinkRefused bool
}

// log returns the dispatcher's logger. It is built on use, not kept: logging is rare (a failing
// sink, a stop at debug level), and a logger with fields costs a cloned encoder with its own
// buffer, about 1 KiB, which at a million dispatchers was most of a worker's memory.
func (d *Sim) log() *zap.Logger {
	return d.cfg.Logger.With(zap.String("changefeed", d.cfg.Changefeed), zap.String("node", d.cfg.Node),
		zap.String("dispatcher", FormatID(d.id)), zap.Stringer("span", span.KeyOf(d.span)))
}

// NewSim creates a simulated dispatcher for dc, a span of table.
func NewSim(cfg SimConfig, dc heartbeatpb.DispatcherConfig, table heartbeatpb.TableConfig) (*Sim, error) {
	if err := cfg.normalize(); err != nil {
		return nil, fmt.Errorf("%w: dispatcher %s: %v", ErrInvalid, FormatID(dc.Id), err)
	}
	return newSim(&cfg, dc, table)
}

// normalize checks cfg and fills in its defaults.
func (cfg *SimConfig) normalize() error {
	if cfg.Sink == nil {
		return errors.New("no sink")
	}
	if cfg.Lag < 0 || cfg.Interval < 0 {
		return errors.New("negative lag or interval")
	}
	if cfg.Lag == 0 {
		cfg.Lag = DefaultLag
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return nil
}

// newSim creates a dispatcher on a normalized cfg, which it keeps (and shares).
func newSim(cfg *SimConfig, dc heartbeatpb.DispatcherConfig, table heartbeatpb.TableConfig) (*Sim, error) {
	if err := span.Validate(dc.Span); err != nil {
		return nil, fmt.Errorf("%w: dispatcher %s: %v", ErrInvalid, FormatID(dc.Id), err)
	}
	if dc.Span.TableId != table.TableId {
		return nil, fmt.Errorf("%w: dispatcher %s: span of table %d, table config of %d",
			ErrInvalid, FormatID(dc.Id), dc.Span.TableId, table.TableId)
	}
	if _, ok := heartbeatpb.Mode_name[int32(dc.Mode)]; !ok {
		return nil, fmt.Errorf("%w: dispatcher %s: unknown mode %d", ErrInvalid, FormatID(dc.Id), dc.Mode)
	}
	if cfg.pace != nil {
		cfg.pace.open++
	}
	return &Sim{
		cfg:        cfg,
		id:         dc.Id,
		span:       dc.Span,
		mode:       dc.Mode,
		load:       ScaleLoad(table.Load, dc.Span),
		checkpoint: dc.StartTs,
	}, nil
}

// ID returns the dispatcher's ID.
func (d *Sim) ID() heartbeatpb.DispatcherID { return d.id }

// Span returns the dispatcher's span.
func (d *Sim) Span() heartbeatpb.TableSpan { return d.span }

// Mode returns the dispatcher's mode.
func (d *Sim) Mode() heartbeatpb.Mode { return d.mode }

// Poll advances the checkpoint to now minus the lag when the interval has passed since the last
// advance, recording the newly processed range in the sink first. It never moves the checkpoint
// back, and a stopped or closed dispatcher does nothing.
func (d *Sim) Poll(now time.Time) (checkpointTs, load uint64) {
	if d.state != simWorking {
		return d.checkpoint, 0
	}
	if d.lastAdvance != 0 && time.Duration(now.UnixNano()-d.lastAdvance) < d.cfg.pace.interval(d.cfg.Interval) {
		return d.checkpoint, d.load
	}
	target := ts.FromTime(now.Add(-d.cfg.Lag))
	if target <= d.checkpoint {
		return d.checkpoint, d.load
	}
	if d.cfg.Replicate != nil {
		if err := d.cfg.Replicate(d.checkpoint, target); err != nil {
			d.log().Warn("replication failed; checkpoint held", zap.Uint64("checkpoint", d.checkpoint), zap.Error(err))
			return d.checkpoint, d.load
		}
	}
	rec := NewRecord(d.cfg.Node, d.cfg.Changefeed, d.id, d.span, d.mode, d.checkpoint, target)
	// The wall time lets the checker tell two owners at once (I1) from a successor's replay.
	rec.At = now.UnixMilli()
	if err := d.cfg.Sink.Append(rec); err != nil {
		// The range is not recorded, so the checkpoint must not claim it; the next Poll retries.
		if !d.sinkRefused {
			d.log().Warn("sink append failed; checkpoint held", zap.Uint64("checkpoint", d.checkpoint), zap.Error(err))
		}
		d.sinkRefused = true
		return d.checkpoint, d.load
	}
	if d.sinkRefused {
		d.log().Info("sink accepts records again; checkpoint moves", zap.Uint64("checkpoint", d.checkpoint))
		d.sinkRefused = false
	}
	d.checkpoint = target
	d.lastAdvance = now.UnixNano()
	return d.checkpoint, d.load
}

// Stop ends processing at the current checkpoint, which becomes final.
func (d *Sim) Stop(now time.Time) (uint64, error) {
	if d.state == simWorking {
		d.state = simStopped
		if d.cfg.Logger.Core().Enabled(zap.DebugLevel) {
			d.log().Debug("dispatcher stopped", zap.Uint64("final", d.checkpoint))
		}
	}
	return d.checkpoint, nil
}

// Close releases the dispatcher; the shared sink stays open (the factory owns it).
func (d *Sim) Close() error {
	if d.state != simClosed && d.cfg.pace != nil {
		d.cfg.pace.open--
	}
	d.state = simClosed
	return nil
}

// ScaleLoad returns the share of tableLoad that s carries: the load scaled by the key width of s
// relative to the whole table's, so split pieces report less and merged ones more.
func ScaleLoad(tableLoad uint64, s heartbeatpb.TableSpan) uint64 {
	if tableLoad == 0 {
		return 0
	}
	t := span.TableSpan(s.TableId)
	width := 24
	for _, k := range [][]byte{s.StartKey, s.EndKey, t.StartKey, t.EndKey} {
		width = max(width, len(k))
	}
	num := new(big.Int).Sub(keyInt(s.EndKey, width), keyInt(s.StartKey, width))
	den := new(big.Int).Sub(keyInt(t.EndKey, width), keyInt(t.StartKey, width))
	if den.Sign() <= 0 || num.Sign() <= 0 {
		return 0
	}
	num.Mul(num, new(big.Int).SetUint64(tableLoad))
	num.Quo(num, den)
	return num.Uint64()
}

// keyInt reads k right-padded with zeros to width bytes as a big-endian number, so that keys of
// different lengths compare and subtract the way they sort.
func keyInt(k []byte, width int) *big.Int {
	b := make([]byte, width)
	copy(b, k)
	return new(big.Int).SetBytes(b)
}

// SimFactoryConfig configures a SimFactory for one node and changefeed.
type SimFactoryConfig struct {
	Node, Changefeed string
	Sink             Sink
	Lag, Interval    time.Duration
	// RecordsPerSecond bounds the records all dispatchers of the factory append together:
	// 0 is DefaultRecordsPerSecond, negative is unbounded.
	RecordsPerSecond int
	Logger           *zap.Logger
}

// SimFactory creates simulated dispatchers that all write to one sink, which it owns.
type SimFactory struct {
	cfg *SimConfig // normalized, shared by its dispatchers
}

// NewSimFactory checks cfg and returns the factory.
func NewSimFactory(cfg SimFactoryConfig) (*SimFactory, error) {
	if cfg.RecordsPerSecond == 0 {
		cfg.RecordsPerSecond = DefaultRecordsPerSecond
	}
	shared := &SimConfig{
		Node: cfg.Node, Changefeed: cfg.Changefeed, Sink: cfg.Sink,
		Lag: cfg.Lag, Interval: cfg.Interval, Logger: cfg.Logger,
		pace: &simPace{perSecond: cfg.RecordsPerSecond},
	}
	if err := shared.normalize(); err != nil {
		return nil, fmt.Errorf("%w: sim factory: %v", ErrInvalid, err)
	}
	return &SimFactory{cfg: shared}, nil
}

// New creates a simulated dispatcher.
func (f *SimFactory) New(dc heartbeatpb.DispatcherConfig, table heartbeatpb.TableConfig) (Dispatcher, error) {
	return newSim(f.cfg, dc, table)
}

// Flush flushes the sink.
func (f *SimFactory) Flush() error { return f.cfg.Sink.Flush() }

// Close closes the sink.
func (f *SimFactory) Close() error { return f.cfg.Sink.Close() }

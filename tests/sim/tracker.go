package sim

import (
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// tracker follows what the dispatchers durably processed, from their sink records, so the
// invariants can ask how far a key range has reached.
type tracker struct {
	startTs   uint64
	reachedBy map[groupKey][]*reach // per table and mode: every dispatcher that ever flushed
	byID      map[string]*reach
	sinks     []*sink
	creations []creation
	broken    []string // violations found inside a core call (a factory call), reported after it
}

type groupKey struct {
	table int64
	mode  heartbeatpb.Mode
}

// reach is how far one dispatcher's durable records got.
type reach struct {
	span heartbeatpb.TableSpan
	to   uint64
}

// creation is one dispatcher a manager created, with how far its range had reached then.
type creation struct {
	node    string
	id      heartbeatpb.DispatcherID
	span    heartbeatpb.TableSpan
	mode    heartbeatpb.Mode
	startTs uint64
	reached uint64
}

func newTracker(startTs uint64) *tracker {
	return &tracker{startTs: startTs, reachedBy: make(map[groupKey][]*reach), byID: make(map[string]*reach)}
}

// newSink returns the sink of one node incarnation. Its records name the incarnation, so the
// sink checker tells a dispatcher ID that a later incarnation creates again from the first.
func (t *tracker) newSink(label string) *sink {
	s := &sink{t: t, mem: dispatcher.NewMemSink(), label: label}
	t.sinks = append(t.sinks, s)
	return s
}

func (t *tracker) durable(r dispatcher.Record) {
	x := t.byID[r.Dispatcher]
	if x == nil {
		start, _ := hex.DecodeString(r.Start)
		end, _ := hex.DecodeString(r.End)
		mode, _ := dispatcher.ParseMode(r.Mode)
		x = &reach{span: heartbeatpb.TableSpan{TableId: r.Table, StartKey: start, EndKey: end}}
		t.byID[r.Dispatcher] = x
		g := groupKey{r.Table, mode}
		t.reachedBy[g] = append(t.reachedBy[g], x)
	}
	x.to = max(x.to, r.To)
}

// reached returns the least, over the key points of s, of the highest ts durably processed at
// that point (the changefeed start when nothing was).
func (t *tracker) reached(s heartbeatpb.TableSpan, mode heartbeatpb.Mode) uint64 {
	var cover []*reach
	bounds := []string{string(s.StartKey), string(s.EndKey)}
	for _, x := range t.reachedBy[groupKey{s.TableId, mode}] {
		if span.Overlap(x.span, s) {
			cover = append(cover, x)
			for _, k := range []string{string(x.span.StartKey), string(x.span.EndKey)} {
				if k > string(s.StartKey) && k < string(s.EndKey) {
					bounds = append(bounds, k)
				}
			}
		}
	}
	sort.Strings(bounds)
	lowest := ^uint64(0)
	for i := 0; i+1 < len(bounds); i++ {
		if bounds[i] == bounds[i+1] {
			continue
		}
		at := t.startTs
		for _, x := range cover {
			if string(x.span.StartKey) <= bounds[i] && bounds[i] < string(x.span.EndKey) {
				at = max(at, x.to)
			}
		}
		lowest = min(lowest, at)
	}
	return lowest
}

// sink wraps a node's MemSink: records count as reached only once flushed, as a crash loses the
// rest. Beside the range records it keeps the source events the dispatchers replicated (data),
// flushed and lost with them.
type sink struct {
	t           *tracker
	label       string
	mem         *dispatcher.MemSink
	pending     []dispatcher.Record
	data        []dataRecord // durable event records, in the order written
	pendingData []dataRecord
}

func (s *sink) Append(r dispatcher.Record) error {
	r.Node = s.label
	return s.appendRaw(r)
}

func (s *sink) appendRaw(r dispatcher.Record) error {
	if err := s.mem.Append(r); err != nil {
		return err
	}
	s.pending = append(s.pending, r)
	return nil
}

func (s *sink) Flush() error {
	if err := s.mem.Flush(); err != nil {
		return err
	}
	for _, r := range s.pending {
		s.t.durable(r)
	}
	s.pending = s.pending[:0]
	s.data = append(s.data, s.pendingData...)
	s.pendingData = s.pendingData[:0]
	return nil
}

func (s *sink) Close() error { return s.mem.Close() }

// crash drops what was not flushed.
func (s *sink) crash() { s.pending, s.pendingData = nil, nil }

// lifeSink labels the records of a dispatcher ID's second and later life on one node
// incarnation (a restored operator may create an ID again after its first life ended), so the
// sink checker does not take two lives for one ownership window.
type lifeSink struct {
	inner *sink
	label string
}

func (s *lifeSink) Append(r dispatcher.Record) error {
	r.Node = s.label
	return s.inner.appendRaw(r)
}

func (s *lifeSink) Flush() error { return s.inner.Flush() }
func (s *lifeSink) Close() error { return nil }

// checkedFactory creates simulated dispatchers writing to the node's sink; it checks I2 on
// every one and logs the creation.
type checkedFactory struct {
	sink  *sink
	c     *Cluster
	node  string
	lives map[heartbeatpb.DispatcherID]int
}

func (f *checkedFactory) New(cfg heartbeatpb.DispatcherConfig, table heartbeatpb.TableConfig) (dispatcher.Dispatcher, error) {
	t := f.c.track
	reached := t.reached(cfg.Span, cfg.Mode)
	t.creations = append(t.creations, creation{node: f.node, id: cfg.Id, span: cfg.Span, mode: cfg.Mode,
		startTs: cfg.StartTs, reached: reached})
	f.c.tracef("%s creates %d.%d %s %v start=%d reached=%d", f.node, cfg.Id.Hi, cfg.Id.Lo, shortSpan(cfg.Span),
		cfg.Mode, cfg.StartTs, reached)
	if cfg.StartTs > reached {
		t.broken = append(t.broken, fmt.Sprintf("I2: %s creates %d.%d on %s %v from %d, above the %d its range reached",
			f.node, cfg.Id.Hi, cfg.Id.Lo, shortSpan(cfg.Span), cfg.Mode, cfg.StartTs, reached))
	}
	f.lives[cfg.Id]++
	var out dispatcher.Sink = f.sink
	label := f.sink.label
	if n := f.lives[cfg.Id]; n > 1 {
		label = fmt.Sprintf("%s+%d", f.sink.label, n)
		out = &lifeSink{inner: f.sink, label: label}
	}
	return dispatcher.NewSim(dispatcher.SimConfig{Node: f.node, Changefeed: changefeed, Sink: out,
		Replicate: f.c.src.replicator(f.sink, label, cfg)}, cfg, table)
}

func (f *checkedFactory) Flush() error { return f.sink.Flush() }

// Prepare prepares lazily: the commit is a New from the final ts, checked like every creation.
func (f *checkedFactory) Prepare(cfg heartbeatpb.DispatcherConfig, table heartbeatpb.TableConfig) (dispatcher.Prepared, error) {
	f.c.tracef("%s prepares %d.%d %s %v from %d", f.node, cfg.Id.Hi, cfg.Id.Lo, shortSpan(cfg.Span), cfg.Mode, cfg.StartTs)
	return &dispatcher.LazyPrepared{Cfg: cfg, Table: table, New: f.New}, nil
}

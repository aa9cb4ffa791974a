package sim

import (
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"time"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
	"github.com/tidemark/tidemark/ts"
)

// sourceKeySuffixes place a table's keys after its start key: the start key itself, the
// boundaries a split into 4 pieces cuts at (0x40, 0x80, 0xc0, which belong to the piece above)
// and keys inside every piece, so that every split piece and every merge sees data.
var sourceKeySuffixes = []string{"", "\x20", "\x40", "\x60", "\x80", "\xa0", "\xc0", "\xff"}

// sourceDeleteRatio is the share of writes to a present key that delete it.
const sourceDeleteRatio = 0.25

// source models the changefeed's source database: a revisioned log of puts and deletes over a
// few keys of every table, written on the simulated clock at a per-table rate drawn from the
// seed (some tables idle). A revision is a changefeed ts: the events written at one tick take
// the logical values just above that tick's millisecond, so the log is totally ordered in the
// same domain as checkpoints, and a span's checkpoint C means "every event of the span with
// revision <= C is in the sink". It draws from its own generator, so the fault schedule of a
// seed is the same with or without it.
type source struct {
	rng     *rand.Rand
	tables  []int64
	keys    map[int64][]string // per table, sorted
	keyB    map[string][]byte  // each key's bytes, shared by every event of it
	rate    map[int64]int      // events per second
	present map[string]bool    // keys that hold a value now
	log     map[int64][]srcEvent
	through uint64 // every event at or below it is written
	writers []writer
	// skipOnRestart is a deliberate bug for the check's own test (datacheck_test.go): every
	// dispatcher that does not start at the changefeed start loses the first event it reads.
	skipOnRestart bool
	startTs       uint64
}

// srcEvent is one change: a put of value, or a delete. The byte forms are made once, so that
// checking a run allocates nothing per event.
type srcEvent struct {
	key, value string
	keyB, valB []byte
	del        bool
	rev        uint64
}

// writer is one life of one dispatcher, as its event records name it.
type writer struct {
	id, span, label string
}

// dataRecord is an event a dispatcher wrote to its node's sink: event idx of the table's log,
// written by writers[writer]. Compact and pointer-free, as a run keeps thousands of them.
type dataRecord struct {
	table  int64
	idx    int32
	writer int32
	mode   heartbeatpb.Mode
}

func newSource(seed int64, tables []heartbeatpb.TableConfig, now time.Time) *source {
	s := &source{
		rng:     rand.New(rand.NewSource(seed ^ 0x5eed_50c4ce)),
		keys:    make(map[int64][]string),
		keyB:    make(map[string][]byte),
		rate:    make(map[int64]int),
		present: make(map[string]bool),
		log:     make(map[int64][]srcEvent),
		through: ts.Compose(now.UnixMilli(), ts.MaxLogical),
		startTs: ts.FromTime(now),
	}
	for _, t := range tables {
		s.tables = append(s.tables, t.TableId)
		start := string(span.TableStartKey(t.TableId))
		for _, suf := range sourceKeySuffixes {
			s.keys[t.TableId] = append(s.keys[t.TableId], start+suf)
			s.keyB[start+suf] = []byte(start + suf)
		}
		s.rate[t.TableId] = 2 * s.rng.Intn(4) // 0 (idle) to 6 events/s
	}
	return s
}

// write appends the events of the tick ending at now: per table, rate*tick events on average.
func (s *source) write(now time.Time, tick time.Duration) {
	ms := now.UnixMilli()
	logical := int64(0)
	for _, t := range s.tables {
		want := float64(s.rate[t]) * tick.Seconds()
		n := int(want)
		if s.rng.Float64() < want-float64(n) {
			n++
		}
		keys := s.keys[t]
		for ; n > 0 && logical < ts.MaxLogical; n-- {
			logical++
			e := srcEvent{key: keys[s.rng.Intn(len(keys))], rev: ts.Compose(ms, logical)}
			e.keyB = s.keyB[e.key]
			if s.present[e.key] && s.rng.Float64() < sourceDeleteRatio {
				e.del = true
			} else {
				e.valB = strconv.AppendUint([]byte{'v'}, e.rev, 36)
				e.value = string(e.valB)
			}
			s.present[e.key] = !e.del
			s.log[t] = append(s.log[t], e)
		}
	}
	s.through = ts.Compose(ms, ts.MaxLogical)
}

// replicator returns the Replicate hook of one simulated dispatcher: it reads the span's events
// in (from, to] from the log and writes them to out as the dispatcher's records, labelled with
// its life (label) so that each dispatcher's writes can be checked for revision order.
func (s *source) replicator(out *sink, label string, dc heartbeatpb.DispatcherConfig) func(from, to uint64) error {
	table, mode := dc.Span.TableId, dc.Mode
	start, end := string(dc.Span.StartKey), string(dc.Span.EndKey)
	w := int32(len(s.writers))
	s.writers = append(s.writers, writer{id: label + "/" + dispatcher.FormatID(dc.Id), span: span.String(dc.Span), label: label})
	skip := s.skipOnRestart && dc.StartTs > s.startTs
	return func(from, to uint64) error {
		if to > s.through {
			return fmt.Errorf("sim source: read up to %d, but only %d is written", to, s.through)
		}
		log := s.log[table]
		i := sort.Search(len(log), func(i int) bool { return log[i].rev > from })
		for ; i < len(log) && log[i].rev <= to; i++ {
			if k := log[i].key; k < start || k >= end {
				continue
			}
			if skip {
				skip = false
				continue
			}
			out.pendingData = append(out.pendingData, dataRecord{table: table, idx: int32(i), writer: w, mode: mode})
		}
		return nil
	}
}

// records returns what the sinks durably hold in mode, as the etcd dispatcher's file sink
// records would say it.
func (s *source) records(sinks []*sink, mode heartbeatpb.Mode) []etcdcdc.Record {
	n := 0
	for _, sk := range sinks {
		n += len(sk.data)
	}
	out := make([]etcdcdc.Record, 0, n)
	for _, sk := range sinks {
		for _, d := range sk.data {
			if d.mode != mode {
				continue
			}
			e, w := &s.log[d.table][d.idx], &s.writers[d.writer]
			r := etcdcdc.Record{Key: e.key, Value: e.value, Op: "put", ModRevision: int64(e.rev),
				Dispatcher: w.id, Span: w.span, Node: w.label, Changefeed: changefeed}
			if e.del {
				r.Op = "delete"
			}
			out = append(out, r)
		}
	}
	return out
}

// want returns the source events a mode's sinks must hold: per key, every event above the
// changefeed start up to the highest ts the key's spans durably reached in that mode.
func (s *source) want(t *tracker, mode heartbeatpb.Mode) []etcdcdc.Event {
	n := 0
	for _, table := range s.tables {
		n += len(s.log[table])
	}
	out := make([]etcdcdc.Event, 0, n)
	for _, table := range s.tables {
		bound := make(map[string]uint64, len(s.keys[table]))
		for _, k := range s.keys[table] {
			point := heartbeatpb.TableSpan{TableId: table, StartKey: []byte(k), EndKey: []byte(k + "\x00")}
			bound[k] = t.reached(point, mode)
		}
		for _, e := range s.log[table] {
			if e.rev > t.startTs && e.rev <= bound[e.key] {
				out = append(out, etcdcdc.Event{Key: e.keyB, Value: e.valB, Delete: e.del, Revision: int64(e.rev)})
			}
		}
	}
	return out
}

// checkData is the end-to-end data check (I8) of the run, the rule the real etcd dispatcher is
// held to (etcdcdc.CheckFileSinks): in every mode, every source event in (start, final
// checkpoint] of every span is in some node's sink, each dispatcher wrote each key's events in
// revision order (a successor repeating what its predecessor wrote is a replay, allowed), and
// no sink holds an event the source never had.
func (c checker) checkData() error {
	for _, mode := range c.modes() {
		if err := c.checkModeData(mode, c.src.records(c.track.sinks, mode)); err != nil {
			return err
		}
	}
	return nil
}

// checkModeData checks the records of one mode against the source.
func (c checker) checkModeData(mode heartbeatpb.Mode, recs []etcdcdc.Record) error {
	want := c.src.want(c.track, mode)
	c.counter["data-checked-events"] += len(want)
	c.counter["data-sink-records"] += len(recs)
	if err := etcdcdc.CheckFileSinks(want, recs); err != nil {
		return c.violation("I8 (%v): %v", mode, err)
	}
	return nil
}

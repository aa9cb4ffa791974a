package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
)

// The figures of the moves scenario are computed from the file sinks alone: every record
// carries its write time (written_unix_nano, the node's clock; all nodes share this machine's
// clock), its dispatcher, and its key, whose range (one table, one span) the key names.
//
// Pause of one move: the origin dispatcher's last write to the destination's first write. The
// origin writes only events at or below the final ts F and the destination only events above
// it, so this is "origin's last sink write to destination's first sink write after F". The
// span must have events to write on both sides of F, or the figure says nothing: the harness
// writes one event to every span of a batch every hot interval (default 2 ms) while the batch
// moves, so a measured pause is the true gap plus at most one interval (with no move at all the
// same measure would read about one interval).

// spanWrites is what one dispatcher wrote to one span: its first and last write times.
type spanWrites struct {
	dispatcher  string
	first, last time.Time
	records     int
}

// writesBySpan groups the records of the ranges under root by range index and dispatcher,
// each span's dispatchers in order of their first write.
func writesBySpan(records []etcdcdc.Record, root string) map[int][]spanWrites {
	type key struct {
		rng int
		d   string
	}
	acc := map[key]*spanWrites{}
	for _, r := range records {
		rng, ok := rangeOf(r.Key, root)
		if !ok || r.WrittenUnixNano == 0 {
			continue
		}
		at := time.Unix(0, r.WrittenUnixNano)
		k := key{rng, r.Dispatcher}
		w := acc[k]
		if w == nil {
			w = &spanWrites{dispatcher: r.Dispatcher, first: at, last: at}
			acc[k] = w
		}
		if at.Before(w.first) {
			w.first = at
		}
		if at.After(w.last) {
			w.last = at
		}
		w.records++
	}
	out := map[int][]spanWrites{}
	for k, w := range acc {
		out[k.rng] = append(out[k.rng], *w)
	}
	for _, ws := range out {
		sort.Slice(ws, func(i, j int) bool { return ws[i].first.Before(ws[j].first) })
	}
	return out
}

// rangeOf is the range index a key of keyspace{root} is in (root + index + "/" + ...).
func rangeOf(key, root string) (int, bool) {
	rest, ok := strings.CutPrefix(key, root)
	if !ok {
		return 0, false
	}
	idx, _, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(idx)
	return n, err == nil
}

// movedSpan is one move the harness asked for: the range, when the request was queued, and when
// the hot load of its batch ended (zero: not known).
type movedSpan struct {
	rng     int
	asked   time.Time
	hotFrom time.Time
	hotEnd  time.Time
}

// movePauses returns the pause of every move that can be measured, and for the others why
// not: the origin is the dispatcher of the span that wrote first before the request was
// queued and wrote last (the one working then), the destination the next dispatcher to start
// writing after it.
func movePauses(writes map[int][]spanWrites, moves []movedSpan) (pauses []movePause, problems []string) {
	for _, m := range moves {
		ws := writes[m.rng]
		origin := -1
		for i, w := range ws {
			if w.first.Before(m.asked) {
				origin = i
			}
		}
		switch {
		case origin < 0:
			problems = append(problems, fmt.Sprintf("range %d: no dispatcher wrote before the move", m.rng))
		case origin == len(ws)-1:
			problems = append(problems, fmt.Sprintf("range %d: no dispatcher wrote after the move's origin %s", m.rng, ws[origin].dispatcher))
		case !m.hotFrom.IsZero() && ws[origin].last.Before(m.hotFrom):
			// The origin's last record is then an event from before the batch: the gap would
			// say when that came, not when the span stopped.
			problems = append(problems, fmt.Sprintf("range %d: origin %s wrote nothing of its batch's hot load (last write %s before it)",
				m.rng, ws[origin].dispatcher, m.hotFrom.Sub(ws[origin].last)))
		case !m.hotEnd.IsZero() && ws[origin+1].first.After(m.hotEnd):
			// The destination's first record is then the span's next steady-load event, seconds
			// later at a large size: the gap says when that event came, not when the span resumed.
			problems = append(problems, fmt.Sprintf("range %d: destination %s first wrote %s after its batch's hot load ended",
				m.rng, ws[origin+1].dispatcher, ws[origin+1].first.Sub(m.hotEnd)))
		default:
			o, d := ws[origin], ws[origin+1]
			pauses = append(pauses, movePause{move: m, origin: o, dest: d})
		}
	}
	return pauses, problems
}

// movePause is one measured move: its span's origin and destination writes.
type movePause struct {
	move         movedSpan
	origin, dest spanWrites
}

func (p movePause) gap() time.Duration { return p.dest.first.Sub(p.origin.last) }

// String says where the pause went: ask to the origin's last write, and from there to the
// destination's first.
func (p movePause) String() string {
	return fmt.Sprintf("range %d: pause %.3fs: origin %s wrote last %.3fs after the ask, destination %s first wrote %.3fs after that",
		p.move.rng, p.gap().Seconds(), p.origin.dispatcher, p.origin.last.Sub(p.move.asked).Seconds(),
		p.dest.dispatcher, p.gap().Seconds())
}

// gaps are the pauses of ps; slowest the n longest, longest first.
func gaps(ps []movePause) []time.Duration {
	out := make([]time.Duration, len(ps))
	for i, p := range ps {
		out[i] = p.gap()
	}
	return out
}

func slowest(ps []movePause, n int) []movePause {
	sorted := append([]movePause(nil), ps...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].gap() > sorted[j].gap() })
	return sorted[:min(n, len(sorted))]
}

// controlGaps are the gaps between consecutive sink writes (distinct write times) of each
// control span by one dispatcher during its batch's hot load: a pause is one such gap across
// a move, so these are what it would read with nothing moving.
func controlGaps(records []etcdcdc.Record, root string, controls []movedSpan) []time.Duration {
	type key struct {
		rng     int
		d       string
		hotFrom int64 // a range may be a control of more than one batch
	}
	window := map[int][]movedSpan{}
	for _, c := range controls {
		window[c.rng] = append(window[c.rng], c)
	}
	times := map[key]map[int64]bool{}
	for _, r := range records {
		rng, ok := rangeOf(r.Key, root)
		if !ok || r.WrittenUnixNano == 0 {
			continue
		}
		at := time.Unix(0, r.WrittenUnixNano)
		for _, c := range window[rng] {
			if !at.Before(c.hotFrom) && at.Before(c.hotEnd) {
				k := key{rng, r.Dispatcher, c.hotFrom.UnixNano()}
				if times[k] == nil {
					times[k] = map[int64]bool{}
				}
				times[k][r.WrittenUnixNano] = true
			}
		}
	}
	var out []time.Duration
	for _, set := range times {
		ts := slices.Sorted(maps.Keys(set))
		for i := 1; i < len(ts); i++ {
			out = append(out, time.Duration(ts[i]-ts[i-1]))
		}
	}
	return out
}

// writeLags is the source-write-to-sink-write lag of every record under root written in
// [from, to), from the write time the load put in the value (see value).
func writeLags(records []etcdcdc.Record, root string, from, to time.Time) []time.Duration {
	var out []time.Duration
	for _, r := range records {
		if !strings.HasPrefix(r.Key, root) || r.WrittenUnixNano == 0 || r.Op != "put" {
			continue
		}
		at := time.Unix(0, r.WrittenUnixNano)
		if at.Before(from) || !at.Before(to) {
			continue
		}
		if src, ok := valueTime([]byte(r.Value)); ok {
			out = append(out, at.Sub(src))
		}
	}
	return out
}

// durationStats is p50, p99 and max of ds in seconds (NaN when there are none).
type durationStats struct {
	N             int
	P50, P99, Max float64
}

func statsOf(ds []time.Duration) durationStats {
	s := durationStats{N: len(ds), P50: math.NaN(), P99: math.NaN(), Max: math.NaN()}
	if len(ds) == 0 {
		return s
	}
	sorted := append([]time.Duration(nil), ds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	at := func(p float64) float64 { return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))].Seconds() }
	s.P50, s.P99, s.Max = at(0.5), at(0.99), sorted[len(sorted)-1].Seconds()
	return s
}

package main

import (
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
)

// TestMovesSmall runs the moves scenario at a tiny size and checks that its report is sane:
// every move of both modes completed and was measured, every pause and figure is positive, and
// the drain moved spans. It checks the harness, not the targets: a loaded CI machine may pause
// far longer than 50 ms.
func TestMovesSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts etcd and three servers twice")
	}
	bin := buildBinary(t)
	rc := runConfig{bin: bin, dir: filepath.Join(t.TempDir(), "moves"), nodes: 3, ttl: 2 * time.Second,
		timeout: 60 * time.Second, logLevel: "warn", logf: t.Logf}
	mc := movesConfig{modes: moveModes, spans: 20, moves: 10, batch: 5, hot: 2 * time.Millisecond, rate: 200, drainWindow: time.Second}
	r := runMoves(rc, mc)
	checkMovesReport(t, r, mc)
}

// checkMovesReport fails t unless r is a complete report of mc.
func checkMovesReport(t *testing.T, r movesResult, mc movesConfig) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Errorf("the scenario failed: %v", r.Errors)
	}
	if len(r.Modes) != len(moveModes) {
		t.Fatalf("%d modes reported, want %d (%v)", len(r.Modes), len(moveModes), moveModes)
	}
	for i, m := range r.Modes {
		if m.Mode != moveModes[i] {
			t.Errorf("mode %d is %q, want %q", i, m.Mode, moveModes[i])
		}
		if len(m.Errors) > 0 {
			t.Errorf("%s: %v", m.Mode, m.Errors)
		}
		if m.Asked != mc.moves || m.Pauses.N != mc.moves {
			t.Errorf("%s: %d pauses measured of %d moves asked, want all %d", m.Mode, m.Pauses.N, m.Asked, mc.moves)
		}
		p := m.Pauses
		if !(p.P50 > 0 && p.P99 >= p.P50 && p.Max >= p.P99) {
			t.Errorf("%s: pauses p50 %v p99 %v max %v, want 0 < p50 <= p99 <= max", m.Mode, p.P50, p.P99, p.Max)
		}
		if !(m.MovesSeconds > 0 && m.ColdStart > 0 && m.DrainSeconds > 0 && m.DrainSpans > 0) {
			t.Errorf("%s: moves phase %vs, cold start %vs, drain of %d spans in %vs: want all positive",
				m.Mode, m.MovesSeconds, m.ColdStart, m.DrainSpans, m.DrainSeconds)
		}
		if !(m.SteadyLag.N > 0 && m.SteadyLag.P50 > 0 && m.DrainLag.N > 0 && m.DrainLag.P50 > 0) {
			t.Errorf("%s: steady lag %+v, drain lag %+v: want records and positive lags", m.Mode, m.SteadyLag, m.DrainLag)
		}
	}
	if !(r.Ratio > 0) {
		t.Errorf("ratio mbb/bbm %v, want a positive figure", r.Ratio)
	}
}

// TestMovePausesRefusesWhatItCannotMeasure: a pause is measured only from an origin that wrote
// during its batch's hot load to a destination that wrote before it ended; anything else is
// named, not turned into a figure.
func TestMovePausesRefusesWhatItCannotMeasure(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	writes := map[int][]spanWrites{
		1: {{dispatcher: "o1", first: at(-5000), last: at(2)}, {dispatcher: "d1", first: at(9), last: at(50)}},
		2: {{dispatcher: "o2", first: at(-5000), last: at(-4000)}, {dispatcher: "d2", first: at(9), last: at(50)}},
		3: {{dispatcher: "o3", first: at(-5000), last: at(2)}, {dispatcher: "d3", first: at(900), last: at(950)}},
		4: {{dispatcher: "d4", first: at(9), last: at(50)}},
		5: {{dispatcher: "o5", first: at(-5000), last: at(2)}},
	}
	var moves []movedSpan
	for r := 1; r <= 5; r++ {
		moves = append(moves, movedSpan{rng: r, hotFrom: at(0), asked: at(3), hotEnd: at(500)})
	}
	pauses, problems := movePauses(writes, moves)
	if len(pauses) != 1 || pauses[0].move.rng != 1 || pauses[0].gap() != 7*time.Millisecond {
		t.Fatalf("pauses %v, want range 1's 7ms only", pauses)
	}
	want := []string{"range 2: origin o2 wrote nothing of its batch's hot load", "range 3: destination d3 first wrote",
		"range 4: no dispatcher wrote before the move", "range 5: no dispatcher wrote after the move's origin o5"}
	if len(problems) != len(want) {
		t.Fatalf("problems %q, want %d", problems, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(problems[i], w) {
			t.Errorf("problem %d: %q, want it to start %q", i, problems[i], w)
		}
	}
}

// TestControlGaps: the gaps are between distinct write times of one dispatcher inside its
// batch's hot window; records of one write, other dispatchers and writes outside the window
// add none.
func TestControlGaps(t *testing.T) {
	t0 := time.Unix(1000, 0)
	rec := func(key, d string, ms int) etcdcdc.Record {
		return etcdcdc.Record{Key: key, Dispatcher: d, Op: "put", WrittenUnixNano: t0.Add(time.Duration(ms) * time.Millisecond).UnixNano()}
	}
	records := []etcdcdc.Record{
		rec("/r/07/a", "d1", -50),                        // before the window
		rec("/r/07/a", "d1", 0), rec("/r/07/b", "d1", 0), // one write of two records
		rec("/r/07/a", "d1", 3),
		rec("/r/07/a", "d2", 4), // another dispatcher: its own series (one write, no gap)
		rec("/r/07/a", "d1", 10),
		rec("/r/07/a", "d1", 100), // after the window
		rec("/r/08/a", "d1", 5),   // not a control
	}
	controls := []movedSpan{{rng: 7, hotFrom: t0, hotEnd: t0.Add(20 * time.Millisecond)}}
	got := controlGaps(records, "/r/", controls)
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	want := []time.Duration{3 * time.Millisecond, 7 * time.Millisecond}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("gaps %v, want %v", got, want)
	}
}

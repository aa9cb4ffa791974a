package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// registerMoves adds the flags of the moves scenario.
func registerMoves(fs *flag.FlagSet, mc *movesConfig) {
	mc.modes = moveModes
	fs.Func("moves-modes", "moves: the modes to measure, of bbm,mbb (default both)", func(v string) error {
		var modes []string
		for _, want := range moveModes {
			if slices.Contains(strings.Split(v, ","), want) {
				modes = append(modes, want)
			}
		}
		for _, m := range strings.Split(v, ",") {
			if !slices.Contains(moveModes, m) {
				return fmt.Errorf("unknown mode %q: want bbm, mbb or bbm,mbb", m)
			}
		}
		mc.modes = modes
		return nil
	})
	fs.IntVar(&mc.spans, "moves-spans", 10000, "moves: source ranges (one span, one watch each) of each mode's changefeed")
	fs.IntVar(&mc.moves, "moves-count", 1000, "moves: spans moved by admin requests in each mode")
	fs.IntVar(&mc.batch, "moves-batch", 10, "moves: admin moves in flight together (their spans get the hot load)")
	fs.DurationVar(&mc.hot, "moves-hot", 2*time.Millisecond, "moves: one event per moving span this often (the pause's resolution)")
	fs.Float64Var(&mc.rate, "moves-rate", 1000, "moves: events/s of the steady load over all spans")
	fs.DurationVar(&mc.drainWindow, "moves-drain-window", 5*time.Second, "moves: steady lag window before the drain of the fullest worker (0: no drain)")
}

func (mc movesConfig) check() error {
	if mc.spans < 2 || mc.moves < 1 || mc.moves > mc.spans || mc.batch < 1 || mc.hot <= 0 || mc.rate <= 0 {
		return fmt.Errorf("-moves-spans %d -moves-count %d -moves-batch %d -moves-hot %v -moves-rate %v: want at least 2 spans, 1 to spans moves, a positive batch, interval and rate",
			mc.spans, mc.moves, mc.batch, mc.hot, mc.rate)
	}
	return nil
}

// printMoves prints both modes side by side and the ratio the target compares.
func printMoves(w io.Writer, r movesResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := fmt.Sprintf("MOVES (%d SPANS)\tUNIT", r.Spans)
	for _, m := range r.Modes {
		head += "\t" + modeTitle(m.Mode)
	}
	fmt.Fprintln(tw, head+"\tTARGET")
	row := func(name, unit, target string, get func(moveMode) float64) {
		line := name + "\t" + unit
		for _, m := range r.Modes {
			line += "\t" + format(get(m))
		}
		fmt.Fprintln(tw, line+"\t"+target)
	}
	row("moves measured / asked", "moves", "all", func(m moveMode) float64 { return float64(m.Pauses.N) })
	row("pause per move p50", "s", "-", func(m moveMode) float64 { return m.Pauses.P50 })
	row("pause per move p99", "s", "mbb <= 0.050", func(m moveMode) float64 { return m.Pauses.P99 })
	row("pause per move max", "s", "-", func(m moveMode) float64 { return m.Pauses.Max })
	row("write gap of an unmoved hot span p50", "s", "-", func(m moveMode) float64 { return m.ControlGaps.P50 })
	row("write gap of an unmoved hot span p99", "s", "-", func(m moveMode) float64 { return m.ControlGaps.P99 })
	row("write gap of an unmoved hot span max", "s", "-", func(m moveMode) float64 { return m.ControlGaps.Max })
	row("moves phase", "s", "-", func(m moveMode) float64 { return m.MovesSeconds })
	row("steady lag p99 (before drain)", "s", "-", func(m moveMode) float64 { return m.SteadyLag.P99 })
	row("steady lag max", "s", "-", func(m moveMode) float64 { return m.SteadyLag.Max })
	row("drained spans", "spans", "~3000", func(m moveMode) float64 { return float64(m.DrainSpans) })
	row("drain duration", "s", "-", func(m moveMode) float64 { return m.DrainSeconds })
	row("lag during drain p99", "s", "-", func(m moveMode) float64 { return m.DrainLag.P99 })
	row("lag during drain max", "s", "-", func(m moveMode) float64 { return m.DrainLag.Max })
	row("cold start", "s", "-", func(m moveMode) float64 { return m.ColdStart })
	fmt.Fprintf(tw, "ratio mbb / bbm pause p99\tx\t%s\t<= 0.1\n", format(r.Ratio))
	_ = tw.Flush()
	for _, e := range r.Errors {
		fmt.Fprintf(w, "moves: %s\n", e)
	}
	for _, m := range r.Modes {
		for _, e := range m.Errors {
			fmt.Fprintf(w, "moves %s: %s\n", m.Mode, e)
		}
	}
}

func modeTitle(mode string) string {
	switch mode {
	case "bbm":
		return "BREAK-BEFORE-MAKE"
	case "mbb":
		return "MAKE-BEFORE-BREAK"
	}
	return mode
}

// movesJSON is the result with NaN (which JSON cannot hold) as nil.
func movesJSON(r movesResult) map[string]any {
	num := func(v float64) any {
		if math.IsNaN(v) {
			return nil
		}
		return v
	}
	stats := func(s durationStats) map[string]any {
		return map[string]any{"n": s.N, "p50": num(s.P50), "p99": num(s.P99), "max": num(s.Max)}
	}
	out := map[string]any{"spans": r.Spans, "mbb_over_bbm_pause_p99": num(r.Ratio)}
	for _, m := range r.Modes {
		mm := map[string]any{"moves_asked": m.Asked, "pause_s": stats(m.Pauses), "moves_s": num(m.MovesSeconds),
			"cold_start_s": num(m.ColdStart), "steady_lag_s": stats(m.SteadyLag), "drain_lag_s": stats(m.DrainLag),
			"drain_spans": m.DrainSpans, "drain_s": num(m.DrainSeconds)}
		if len(m.Errors) > 0 {
			mm["errors"] = m.Errors
		}
		out[m.Mode] = mm
	}
	if len(r.Errors) > 0 {
		out["errors"] = r.Errors
	}
	return out
}

// failed reports whether any phase of any mode failed.
func (r movesResult) failed() bool {
	if len(r.Errors) > 0 {
		return true
	}
	for _, m := range r.Modes {
		if len(m.Errors) > 0 {
			return true
		}
	}
	return false
}

// movesScenario runs the moves scenario, prints it and writes its JSON; failed is true when a
// phase failed (the figures printed are then partial).
func movesScenario(rc runConfig, mc movesConfig, jsonPath string, stdout io.Writer) (failed bool, err error) {
	if err := os.MkdirAll(rc.dir, 0o755); err != nil {
		return false, err
	}
	rc.logf("moves: %d moves at %d spans, %d in flight, modes %s (logs in %s)", mc.moves, mc.spans, mc.batch, strings.Join(mc.modes, ","), rc.dir)
	r := runMoves(rc, mc)
	printMoves(stdout, r)
	if jsonPath != "" {
		b, _ := json.MarshalIndent(movesJSON(r), "", "  ")
		if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
			return true, err
		}
	}
	return r.failed(), nil
}

package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one row of the table: how to read it off a result and what the target at 1M is.
type figure struct {
	name, unit, target string
	get                func(result) float64
}

var figures = []figure{
	{"cold start", "s", "<= 60 s", func(r result) float64 { return r.ColdStartSeconds }},
	{"failover (kill -9 maintainer)", "s", "<= TTL + 2 s", func(r result) float64 { return r.FailoverSeconds }},
	{"elected to bootstrapped (new maintainer)", "s", "(reported)", func(r result) float64 { return r.BootstrapSeconds }},
	{"restore (last answer to plan applied)", "s", "<= 1 s", func(r result) float64 { return r.RestoreSeconds }},
	{"maintainer ingress at rest", "B/span/s", "<= 2", func(r result) float64 { return r.IngressBytesPerSpanSecond }},
	{"maintainer RSS", "B/span", "<= 500", func(r result) float64 { return r.MaintainerRSSPerSpan }},
	{"worker RSS", "B/dispatcher", "<= 1024", func(r result) float64 { return r.WorkerRSSPerDispatcher }},
	{"moves (drain of a worker)", "moves/s", ">= 2000", func(r result) float64 { return r.MovesPerSecond }},
	{"ctl status", "s", "< 1 s", func(r result) float64 { return r.CtlStatusSeconds }},
	{"ctl spans --limit 1000", "s", "< 1 s (a page)", func(r result) float64 { return r.CtlSpansSeconds }},
}

// printTable prints one row per figure, a column per size, and the ratio of each size's figure
// to the previous size's, so that growth shows (10x spans and a ratio of 10 is linear).
func printTable(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"FIGURE", "UNIT"}
	for i, r := range results {
		head = append(head, fmt.Sprintf("%d SPANS", r.Spans))
		if i > 0 {
			head = append(head, fmt.Sprintf("x%d/%d", r.Spans, results[i-1].Spans))
		}
	}
	head = append(head, "TARGET AT 1M")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, f := range figures {
		row := []string{f.name, f.unit}
		for i, r := range results {
			row = append(row, format(f.get(r)))
			if i > 0 {
				row = append(row, ratio(f.get(r), f.get(results[i-1])))
			}
		}
		row = append(row, f.target)
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
	for _, r := range results {
		for _, e := range r.Errors {
			fmt.Fprintf(w, "%d spans: %s\n", r.Spans, e)
		}
	}
}

func format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func ratio(v, prev float64) string {
	if math.IsNaN(v) || math.IsNaN(prev) || prev == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v/prev)
}

// jsonResults replaces NaN (which JSON cannot hold) by nil.
func jsonResults(results []result) []map[string]any {
	out := make([]map[string]any, 0, len(results))
	for _, r := range results {
		m := map[string]any{"spans": r.Spans}
		for _, f := range figures {
			key := strings.NewReplacer(" ", "_", "(", "", ")", "", "-", "").Replace(f.name + " " + f.unit)
			if v := f.get(r); !math.IsNaN(v) {
				m[key] = v
			} else {
				m[key] = nil
			}
		}
		if len(r.Errors) > 0 {
			m["errors"] = r.Errors
		}
		out = append(out, m)
	}
	return out
}

// printCDC prints the data-plane figures in the same layout: one measured column and the
// target, then the ratios the targets compare.
func printCDC(w io.Writer, r cdcResult, ttl time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "DATA PLANE (%d EVENTS)\tUNIT\tMEASURED\tTARGET\n", r.Events)
	rows := []struct {
		name, unit string
		v          float64
		target     string
	}{
		{"source writes (mirror phase load)", "events/s", r.LoadRate, "ceiling of the rates below"},
		{"tidemark, file sink, 3 nodes", "events/s", r.FileRate, "reported"},
		{"tidemark, etcd mirror, 3 nodes", "events/s", r.MirrorRate, ">= make-mirror"},
		{"etcdctl make-mirror", "events/s", r.MakeMirrorRate, "-"},
		{"tidemark mirror: events per target txn", "events", r.MirrorPerTxn, "reported"},
		{"make-mirror: events per target txn", "events", r.MakeMirrorPerTxn, "reported"},
		{"ratio mirror / make-mirror", "x", safeDiv(r.MirrorRate, r.MakeMirrorRate), ">= 1"},
		{"ratio file / make-mirror", "x", safeDiv(r.FileRate, r.MakeMirrorRate), "reported"},
		{fmt.Sprintf("mirror lag p50 at %.0f events/s", r.LagRate), "s", r.LagP50, "-"},
		{fmt.Sprintf("mirror lag p99 at %.0f events/s", r.LagRate), "s", r.LagP99, "<= 1 s"},
		{"kill -9 worker: lag back under 1 s", "s", r.KillRecovery, fmt.Sprintf("<= TTL + 2 s = %v", ttl+2*time.Second)},
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.name, row.unit, format(row.v), row.target)
	}
	_ = tw.Flush()
	for _, e := range r.Errors {
		fmt.Fprintf(w, "data plane: %s\n", e)
	}
}

func safeDiv(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}

// cdcJSON is the data-plane result with NaN (which JSON cannot hold) as nil.
func cdcJSON(r cdcResult) map[string]any {
	return figuresJSON(map[string]any{"events": r.Events, "lag_rate_events_per_s": r.LagRate}, map[string]float64{"load_events_per_s": r.LoadRate, "file_events_per_s": r.FileRate,
		"mirror_events_per_s": r.MirrorRate, "mirror_events_per_txn": r.MirrorPerTxn, "make_mirror_events_per_txn": r.MakeMirrorPerTxn, "make_mirror_events_per_s": r.MakeMirrorRate,
		"mirror_over_make_mirror": safeDiv(r.MirrorRate, r.MakeMirrorRate), "lag_p50_s": r.LagP50, "lag_p99_s": r.LagP99,
		"kill_recovery_s": r.KillRecovery}, r.Errors)
}

// figuresJSON adds the figures to m, NaN (which JSON cannot hold) as nil, and the errors.
func figuresJSON(m map[string]any, figs map[string]float64, errs []string) map[string]any {
	for k, v := range figs {
		if math.IsNaN(v) {
			m[k] = nil
		} else {
			m[k] = v
		}
	}
	if len(errs) > 0 {
		m["errors"] = errs
	}
	return m
}

package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// figure is one row of the table: how to read it off a result and what the target at 1M is.
type figure struct {
	name, unit, target string
	get                func(result) float64
}

var figures = []figure{
	{"cold start", "s", "<= 60 s", func(r result) float64 { return r.ColdStartSeconds }},
	{"failover (kill -9 maintainer)", "s", "<= TTL + 2 s", func(r result) float64 { return r.FailoverSeconds }},
	{"elected to bootstrapped (new maintainer)", "s", "restore <= 1 s", func(r result) float64 { return r.BootstrapSeconds }},
	{"maintainer ingress at rest", "B/span/s", "<= 2", func(r result) float64 { return r.IngressBytesPerSpanSecond }},
	{"maintainer RSS", "B/span", "<= 500", func(r result) float64 { return r.MaintainerRSSPerSpan }},
	{"worker RSS", "B/dispatcher", "<= 1024", func(r result) float64 { return r.WorkerRSSPerDispatcher }},
	{"moves (drain of a worker)", "moves/s", ">= 2000", func(r result) float64 { return r.MovesPerSecond }},
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

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// dataPlane is what the nodes' /metrics say of one changefeed's replication: the events
// replicated so far (summed over the nodes) and the worst lag in revisions and seconds.
type dataPlane struct {
	events       float64
	lagRevisions float64
	lagSeconds   float64
	nodes        int // nodes that answered
}

// The series read; server/metrics.go and server/lagmetrics.go define them.
const (
	metricReplicatedEvents = "tidemark_replicated_events_total"
	metricLagSeconds       = "tidemark_replication_lag_seconds"
	metricLagRevisions     = "tidemark_replication_lag_revisions"
)

// nodeLagSeconds fills the lag in seconds of an etcd-dispatcher changefeed from the nodes'
// metrics: the worst over the nodes that answer.
func nodeLagSeconds(ctx context.Context, env *ctlEnv, cs *cfStatusJSON, addrs []string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	dp, err := scrapeDataPlane(ctx, env.api(), addrs, cs.ID)
	cs.CheckpointLagSeconds = dp.lagSeconds
	if dp.nodes == 0 {
		cs.LagSecondsError = "no node's /metrics answered"
		if err != nil {
			cs.LagSecondsError += ": " + err.Error()
		}
	}
}

// scrapeDataPlane reads /metrics of every address (host:port of a status API) and sums or
// maxes cf's series. Nodes that do not answer are left out; err is the first failure.
func scrapeDataPlane(ctx context.Context, client apiClient, addrs []string, cf string) (dataPlane, error) {
	var dp dataPlane
	var first error
	for _, addr := range addrs {
		vals, err := scrapeMetrics(ctx, client, client.scheme+"://"+addr+"/metrics", cf)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		dp.nodes++
		dp.events += vals[metricReplicatedEvents]
		dp.lagSeconds = max(dp.lagSeconds, vals[metricLagSeconds])
		dp.lagRevisions = max(dp.lagRevisions, vals[metricLagRevisions])
	}
	return dp, first
}

func scrapeMetrics(ctx context.Context, client apiClient, url, cf string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d", url, resp.StatusCode)
	}
	return parseChangefeedSeries(io.LimitReader(resp.Body, 64<<20), cf, metricReplicatedEvents, metricLagSeconds, metricLagRevisions)
}

// parseChangefeedSeries reads the Prometheus text format and returns, per wanted metric, the
// value of its series labelled changefeed=cf (summed if there are several). Only the simple
// form the server writes is understood: name{labels} value.
func parseChangefeedSeries(r io.Reader, cf string, names ...string) (map[string]float64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	label := `changefeed="` + cf + `"`
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, "{")
		if !ok || !want[name] {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok || !hasLabel(labels, label) {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: bad value %q", name, value)
		}
		out[name] += v
	}
	return out, sc.Err()
}

// hasLabel reports whether the comma-separated label list holds exactly label.
func hasLabel(labels, label string) bool {
	for _, l := range strings.Split(labels, ",") {
		if l == label {
			return true
		}
	}
	return false
}

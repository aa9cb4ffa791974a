package server

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidemark/tidemark/dispatcher"
)

// lagCollector reads, at scrape time, the replication lag of every changefeed whose dispatcher
// kind gave this node a lag function (dispatcher.DataPlane.SetLag): the worst over its spans
// here. A changefeed's series go away when its dispatcher manager stops on this node.
type lagCollector struct {
	revisions, seconds *prometheus.Desc

	mu  sync.Mutex
	fns map[string]func(time.Time) dispatcher.Lag
}

func newLagCollector() *lagCollector {
	return &lagCollector{
		revisions: prometheus.NewDesc("tidemark_replication_lag_revisions",
			"Source revisions the newest known revision is ahead of the checkpoint of this node's slowest span.", []string{"changefeed"}, nil),
		seconds: prometheus.NewDesc("tidemark_replication_lag_seconds",
			"Age of the oldest change this node saw on the source and has not made durable in the sink yet (0: none).", []string{"changefeed"}, nil),
		fns: map[string]func(time.Time) dispatcher.Lag{},
	}
}

// set installs (fn non-nil) or removes (nil) the lag function of a changefeed.
func (c *lagCollector) set(cf string, fn func(time.Time) dispatcher.Lag) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fn == nil {
		delete(c.fns, cf)
		return
	}
	c.fns[cf] = fn
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.revisions
	ch <- c.seconds
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	fns := make(map[string]func(time.Time) dispatcher.Lag, len(c.fns))
	for cf, fn := range c.fns {
		fns[cf] = fn
	}
	c.mu.Unlock()
	now := time.Now()
	for cf, fn := range fns {
		lag := fn(now)
		ch <- prometheus.MustNewConstMetric(c.revisions, prometheus.GaugeValue, float64(lag.Revisions), cf)
		ch <- prometheus.MustNewConstMetric(c.seconds, prometheus.GaugeValue, lag.Seconds, cf)
	}
}

// dataPlane builds the hooks a changefeed's dispatcher kind reports to, bound to its labels.
func (m *metrics) dataPlane(cf string) dispatcher.DataPlane {
	events, bytes := m.replicatedEvents.WithLabelValues(cf), m.replicatedBytes.WithLabelValues(cf)
	srcErrs, sinkErrs := m.sourceErrors.WithLabelValues(cf), m.sinkErrors.WithLabelValues(cf)
	return dispatcher.DataPlane{
		OnReplicated: func(n, b int) {
			events.Add(float64(n))
			bytes.Add(float64(b))
		},
		OnSourceError: func(error) { srcErrs.Inc() },
		OnSinkError:   func(error) { sinkErrs.Inc() },
		SetLag:        func(fn func(time.Time) dispatcher.Lag) { m.lag.set(cf, fn) },
	}
}

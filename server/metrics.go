package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/maintainer"
	"github.com/tidemark/tidemark/ts"
)

// metrics are the node-level series; the transport registers its own on the same registry
// (tidemark_messaging_*: messages sent, received and dropped), and maintainerCollector adds the
// per-changefeed series of the maintainers running here at scrape time.
type metrics struct {
	liveNodes        prometheus.Gauge
	sessionsLost     prometheus.Counter
	elected          prometheus.Counter
	failovers        *prometheus.CounterVec
	bootstrap        *prometheus.HistogramVec
	restore          *prometheus.HistogramVec
	admin            *prometheus.CounterVec
	leaseGuardStalls prometheus.Counter
	inboxDropped     *prometheus.CounterVec
	rejected         *prometheus.CounterVec
	held             prometheus.Counter
	leaderReads      *prometheus.CounterVec
	checkpoint       *prometheus.GaugeVec
	evicted          *prometheus.CounterVec
	sinkErrors       *prometheus.CounterVec
	sinkFailing      *prometheus.GaugeVec
	// The data plane: what this node's dispatchers replicated, per changefeed, and the lag
	// (lagCollector). Only dispatchers that move real data (the etcd kind) report these.
	replicatedEvents *prometheus.CounterVec
	replicatedBytes  *prometheus.CounterVec
	sourceErrors     *prometheus.CounterVec
	lag              *lagCollector
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		liveNodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "tidemark", Name: "live_nodes", Help: "Nodes registered in etcd, as this node sees them.",
		}),
		sessionsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "sessions_lost_total", Help: "etcd sessions this node lost (all its work was stopped each time).",
		}),
		elected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "maintainer_elections_won_total", Help: "Maintainer elections this node won.",
		}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "maintainer_failovers_total",
			Help: "Maintainer terms this node started that took over from an earlier maintainer of the changefeed.",
		}, []string{"changefeed"}),
		bootstrap: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tidemark", Name: "maintainer_bootstrap_duration_seconds",
			Help:    "Time from winning the election to a restored schedule.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, []string{"changefeed"}),
		restore: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tidemark", Name: "maintainer_restore_duration_seconds",
			Help: "Time from taking the last bootstrap answer (or its last chunk) off the inbox to the restored " +
				"schedule applied: the restore alone, without waiting for the answers.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"changefeed"}),
		admin: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "admin_requests_total", Help: "Admin requests this node answered as maintainer, by kind and outcome.",
		}, []string{"kind", "outcome"}),
		leaseGuardStalls: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "lease_guard_stalls_total", Help: "Ticks skipped because the lease might have expired.",
		}),
		inboxDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "inbox_dropped_total", Help: "Inbound envelopes dropped before a core saw them.",
		}, []string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "envelopes_rejected_total", Help: "Envelopes a core rejected (stale, malformed, fenced).",
		}, []string{"core"}),
		held: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "envelopes_held_total",
			Help: "Envelopes a dispatcher manager held because etcd had not confirmed their epoch yet.",
		}),
		leaderReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "leader_reads_total",
			Help: "Quick etcd reads of a changefeed's leader asked for by a held envelope, by result.",
		}, []string{"result"}),
		checkpoint: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "tidemark", Name: "changefeed_checkpoint_ts", Help: "Changefeed checkpoint persisted by this node as maintainer.",
		}, []string{"changefeed"}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "nodes_evicted_total",
			Help: "Registrations of nodes silent past the bootstrap timeout deleted by this node as maintainer.",
		}, []string{"changefeed"}),
		sinkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "sink_errors_total",
			Help: "Failed writes and fsyncs of this node's sinks (each is retried with backoff).",
		}, []string{"changefeed"}),
		sinkFailing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "tidemark", Name: "sink_failing",
			Help: "1 while this node's sink for the changefeed is failing (checkpoints held), else 0.",
		}, []string{"changefeed"}),
		replicatedEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "replicated_events_total",
			Help: "Source events (puts and deletes) this node's dispatchers made durable in the sink.",
		}, []string{"changefeed"}),
		replicatedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "replicated_bytes_total",
			Help: "Bytes (keys plus values) of the source events this node's dispatchers made durable in the sink.",
		}, []string{"changefeed"}),
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "source_errors_total",
			Help: "Failed reads of the changefeed's source by this node (broken watches, failed probes; each is retried).",
		}, []string{"changefeed"}),
		lag: newLagCollector(),
	}
	reg.MustRegister(m.replicatedEvents, m.replicatedBytes, m.sourceErrors, m.lag)
	reg.MustRegister(m.liveNodes, m.sessionsLost, m.elected, m.failovers, m.bootstrap, m.restore, m.admin,
		m.leaseGuardStalls, m.inboxDropped, m.rejected, m.held, m.leaderReads, m.checkpoint, m.evicted,
		m.sinkErrors, m.sinkFailing)
	return m
}

// scrapeTimeout bounds how long one scrape waits for each maintainer loop.
const scrapeTimeout = time.Second

// maintainerCollector reads the maintainers running on this node at scrape time, through their
// loops (never touching a core from the HTTP goroutine). Its series appear while this node
// maintains a changefeed; counters restart at zero with every new term, which Prometheus'
// rate() treats as a counter reset.
type maintainerCollector struct {
	terms *terms

	spans, inFlight, oldest, finished, timedOut, madeBeforeBreak, lag *prometheus.Desc
}

func newMaintainerCollector(t *terms) *maintainerCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("tidemark_"+name, help, append([]string{"changefeed"}, labels...), nil)
	}
	return &maintainerCollector{
		terms:           t,
		spans:           d("spans", "Spans (all modes) by node and state; absent spans have node \"\".", "node", "state"),
		inFlight:        d("operators_in_flight", "Operators in flight by kind.", "kind"),
		oldest:          d("operator_oldest_age_seconds", "Age of the oldest in-flight operator by kind.", "kind"),
		finished:        d("operators_finished_total", "Operators finished in this maintainer term, by kind and outcome.", "kind", "outcome"),
		timedOut:        d("operators_timed_out_total", "Operators whose phase got no answer for the phase timeout and were rolled back, in this maintainer term, by kind.", "kind"),
		madeBeforeBreak: d("operators_made_before_break_total", "Operators counted succeeded in operators_finished_total that committed a target prepared while the source still worked (make-before-break), in this maintainer term, by kind.", "kind"),
		lag:             d("changefeed_checkpoint_lag_seconds", "Wall clock minus the persisted changefeed checkpoint."),
	}
}

func (c *maintainerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.spans, c.inFlight, c.oldest, c.finished, c.timedOut, c.madeBeforeBreak, c.lag} {
		ch <- d
	}
}

func (c *maintainerCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, cf := range c.terms.ids() {
		var st maintainer.Status
		var states map[string]map[string]int
		var ops []api.OperatorInfo
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		err := c.terms.ask(ctx, cf, func(m *maintainer.Maintainer) {
			st, states, ops = m.Status(), m.NodeSpanStates(), m.Operators()
		})
		cancel()
		if err != nil {
			continue // term ended or loop busy: the series are missing from this scrape
		}
		ch <- prometheus.MustNewConstMetric(c.spans, prometheus.GaugeValue, float64(st.Spans["absent"]), cf, "", "absent")
		for node, byState := range states {
			for state, n := range byState {
				ch <- prometheus.MustNewConstMetric(c.spans, prometheus.GaugeValue, float64(n), cf, node, state)
			}
		}
		count, oldest := map[string]int{}, map[string]float64{}
		for _, op := range ops {
			count[op.Kind]++
			oldest[op.Kind] = max(oldest[op.Kind], op.AgeSeconds)
		}
		for kind, n := range count {
			ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(n), cf, kind)
			ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, oldest[kind], cf, kind)
		}
		for key, n := range st.OperatorsDone {
			kind, outcome := splitKindOutcome(key)
			ch <- prometheus.MustNewConstMetric(c.finished, prometheus.CounterValue, float64(n), cf, kind, outcome)
		}
		for kind, n := range st.OperatorsTimedOut {
			ch <- prometheus.MustNewConstMetric(c.timedOut, prometheus.CounterValue, float64(n), cf, kind)
		}
		for kind, n := range st.MadeBeforeBreak {
			ch <- prometheus.MustNewConstMetric(c.madeBeforeBreak, prometheus.CounterValue, float64(n), cf, kind)
		}
		if st.Checkpoint > 0 {
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, ts.Lag(st.Checkpoint, now).Seconds(), cf)
		}
	}
}

// splitKindOutcome splits maintainer.Status.OperatorsDone's "kind/outcome" keys.
func splitKindOutcome(key string) (string, string) {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '/' {
			return key[:i], key[i+1:]
		}
	}
	return key, ""
}

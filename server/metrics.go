package server

import "github.com/prometheus/client_golang/prometheus"

// metrics are the node-level series; the transport registers its own on the same registry.
type metrics struct {
	liveNodes        prometheus.Gauge
	sessionsLost     prometheus.Counter
	elected          prometheus.Counter
	leaseGuardStalls prometheus.Counter
	inboxDropped     *prometheus.CounterVec
	rejected         *prometheus.CounterVec
	checkpoint       *prometheus.GaugeVec
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
		leaseGuardStalls: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "lease_guard_stalls_total", Help: "Ticks skipped because the lease might have expired.",
		}),
		inboxDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "inbox_dropped_total", Help: "Inbound envelopes dropped before a core saw them.",
		}, []string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Name: "envelopes_rejected_total", Help: "Envelopes a core rejected (stale, malformed, fenced).",
		}, []string{"core"}),
		checkpoint: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "tidemark", Name: "changefeed_checkpoint_ts", Help: "Changefeed checkpoint persisted by this node as maintainer.",
		}, []string{"changefeed"}),
	}
	reg.MustRegister(m.liveNodes, m.sessionsLost, m.elected, m.leaseGuardStalls, m.inboxDropped, m.rejected, m.checkpoint)
	return m
}

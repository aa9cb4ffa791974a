package dispatcher

import "time"

// DataPlane is how a dispatcher kind reports its replication to the node's metrics. The node
// hands one to each changefeed's factory (server.DispatcherEnv); every field may be nil, and a
// kind that replicates nothing real leaves them alone.
type DataPlane struct {
	// OnReplicated counts events made durable in the sink and their bytes (key plus value).
	OnReplicated func(events, bytes int)
	// OnSourceError counts a failed read of the source (a broken watch, a failed probe).
	OnSourceError func(error)
	// OnSinkError counts a failed sink write (each is retried).
	OnSinkError func(error)
	// SetLag gives the node the function it calls at scrape time to read the changefeed's lag
	// on this node: the worst over its spans. Called once; the function must be safe for
	// concurrent use.
	SetLag func(func(now time.Time) Lag)
}

// Lag is how far the spans of one changefeed on one node trail their source.
type Lag struct {
	// Revisions: the source's newest known revision minus the span's checkpoint.
	Revisions int64
	// Seconds: how long the oldest change not yet durable in the sink has waited since the
	// node saw it on the source; 0 when everything seen is durable.
	Seconds float64
}

// ReportReplicated calls OnReplicated if set.
func (p DataPlane) ReportReplicated(events, bytes int) {
	if p.OnReplicated != nil {
		p.OnReplicated(events, bytes)
	}
}

// ReportSourceError calls OnSourceError if set.
func (p DataPlane) ReportSourceError(err error) {
	if p.OnSourceError != nil {
		p.OnSourceError(err)
	}
}

// ReportSinkError calls OnSinkError if set.
func (p DataPlane) ReportSinkError(err error) {
	if p.OnSinkError != nil {
		p.OnSinkError(err)
	}
}

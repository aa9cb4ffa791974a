package messaging

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// dropReason says why an envelope was not delivered; its String is the "reason" metric label.
type dropReason int

const (
	dropQueueFull    dropReason = iota // the peer's bounded queue was full
	dropNoPeer                         // Envelope.To is not a known peer
	dropDecode                         // a received Batch did not decode
	dropWrongCluster                   // Envelope.ClusterId is not ours
	dropClosed                         // the transport or the peer was closed with it queued
	dropInvalid                        // nil envelope, or From/To do not match the stream
	dropTooLarge                       // one envelope exceeds the maximum message size
	dropFault                          // dropped on purpose by an injected transport fault
	numDropReasons
)

func (r dropReason) String() string {
	switch r {
	case dropQueueFull:
		return "queue_full"
	case dropNoPeer:
		return "no_peer"
	case dropDecode:
		return "decode"
	case dropWrongCluster:
		return "wrong_cluster"
	case dropClosed:
		return "closed"
	case dropInvalid:
		return "invalid"
	case dropTooLarge:
		return "too_large"
	case dropFault:
		return "fault"
	}
	return fmt.Sprintf("dropReason(%d)", int(r))
}

// Stats are a transport's totals since it was created, for tests and the status API.
type Stats struct {
	Sent     uint64 // envelopes written to a stream (or handed to the local handler)
	Received uint64 // envelopes handed to the Handler
	Dropped  DropStats
	Peers    []PeerStats // sorted by ID; empty for the in-memory transport
}

// DropStats counts dropped envelopes by reason.
type DropStats struct {
	QueueFull, NoPeer, Decode, WrongCluster, Closed, Invalid, TooLarge, Fault uint64
}

// Total is the sum over all reasons.
func (d DropStats) Total() uint64 {
	return d.QueueFull + d.NoPeer + d.Decode + d.WrongCluster + d.Closed + d.Invalid + d.TooLarge + d.Fault
}

// PeerStats is one peer as the transport sees it now.
type PeerStats struct {
	ID        string
	Addr      string // "" when the peer is known only from its inbound stream
	Connected bool   // a stream to it is established
	Queued    int    // envelopes waiting in its queue
}

// counters keeps the totals (atomics, for Stats) and the prometheus series side by side.
type counters struct {
	sent, received atomic.Uint64
	dropped        [numDropReasons]atomic.Uint64

	sentVec, receivedVec, droppedVec *prometheus.CounterVec
	// receivedBytes is the encoded size of what was handed to the handler: the figure a
	// maintainer's ingress is judged by (bytes per span per second in steady state).
	receivedBytes *prometheus.CounterVec
}

// newCounters builds the counters and registers them with reg when it is not nil. node becomes a
// constant label so that several transports (the playground runs several nodes) share a registry.
func newCounters(node string, reg prometheus.Registerer) (*counters, error) {
	labels := prometheus.Labels{"node": node}
	c := &counters{
		sentVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Subsystem: "messaging", Name: "sent_envelopes_total",
			Help: "Envelopes sent to a peer.", ConstLabels: labels,
		}, []string{"peer"}),
		receivedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Subsystem: "messaging", Name: "received_envelopes_total",
			Help: "Envelopes received from a peer and handed to the handler.", ConstLabels: labels,
		}, []string{"peer"}),
		droppedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Subsystem: "messaging", Name: "dropped_envelopes_total",
			Help: "Envelopes dropped, by peer and reason.", ConstLabels: labels,
		}, []string{"peer", "reason"}),
		receivedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidemark", Subsystem: "messaging", Name: "received_bytes_total",
			Help: "Encoded bytes of the envelopes received from a peer and handed to the handler.", ConstLabels: labels,
		}, []string{"peer"}),
	}
	if reg == nil {
		return c, nil
	}
	for _, col := range []prometheus.Collector{c.sentVec, c.receivedVec, c.droppedVec, c.receivedBytes} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("messaging: register metrics: %w", err)
		}
	}
	return c, nil
}

// unregister removes the series from reg so that a closed transport can be replaced by a new one
// on the same registry (a node restarting in process, tests).
func (c *counters) unregister(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	reg.Unregister(c.sentVec)
	reg.Unregister(c.receivedVec)
	reg.Unregister(c.droppedVec)
	reg.Unregister(c.receivedBytes)
}

func (c *counters) addSent(peer string, n int) {
	c.sent.Add(uint64(n))
	c.sentVec.WithLabelValues(peer).Add(float64(n))
}

func (c *counters) addReceived(peer string, envs []*heartbeatpb.Envelope) {
	c.received.Add(uint64(len(envs)))
	c.receivedVec.WithLabelValues(peer).Add(float64(len(envs)))
	size := 0
	for _, env := range envs {
		size += env.Size()
	}
	c.receivedBytes.WithLabelValues(peer).Add(float64(size))
}

func (c *counters) addDropped(peer string, r dropReason, n int) {
	if n <= 0 {
		return
	}
	c.dropped[r].Add(uint64(n))
	c.droppedVec.WithLabelValues(peer, r.String()).Add(float64(n))
}

func (c *counters) stats() Stats {
	d := func(r dropReason) uint64 { return c.dropped[r].Load() }
	return Stats{
		Sent:     c.sent.Load(),
		Received: c.received.Load(),
		Dropped: DropStats{
			QueueFull: d(dropQueueFull), NoPeer: d(dropNoPeer), Decode: d(dropDecode),
			WrongCluster: d(dropWrongCluster), Closed: d(dropClosed), Invalid: d(dropInvalid),
			TooLarge: d(dropTooLarge), Fault: d(dropFault),
		},
	}
}

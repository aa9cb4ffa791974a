package messaging

import (
	"github.com/tidemark/tidemark/heartbeatpb"
)

// Handler receives every envelope addressed to this node. It is called for one peer's envelopes
// one at a time and in order, but for different peers concurrently. It must not keep the
// envelope's memory shared with anyone else: the envelope is the handler's from then on.
type Handler func(env *heartbeatpb.Envelope)

// Transport moves envelopes between nodes. Delivery is best effort: Send never blocks and may drop
// (counted in Stats); the cores resend what matters.
type Transport interface {
	// Send queues env for env.To and returns at once. A message to this node itself goes to the
	// handler without touching the network. Send takes ownership of env.
	Send(env *heartbeatpb.Envelope)
	// SetPeers replaces the peer set (node ID -> gRPC address) with the registry's view. Peers that
	// left or changed address have their streams closed.
	SetPeers(peers map[string]string)
	// Stats returns the totals since creation.
	Stats() Stats
	// Close stops everything and waits for the transport's goroutines. It is idempotent.
	Close() error
}

package messaging

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Defaults for GRPCConfig's zero values.
const (
	DefaultQueueSize  = 4096     // envelopes queued per peer before Send drops
	DefaultMaxBatch   = 256      // envelopes per Batch on the wire
	DefaultMaxMsgSize = 64 << 20 // bytes per Batch; bootstrap responses can be large

	defaultBackoffMin       = 50 * time.Millisecond
	defaultBackoffMax       = 3 * time.Second
	defaultHandshakeTimeout = 10 * time.Second
)

// GRPCConfig configures a GRPCTransport.
type GRPCConfig struct {
	NodeID    string // this node; must be non-empty
	ClusterID string // every envelope and every stream must carry it
	// ListenAddr is the address to listen on ("127.0.0.1:0" in tests). Exactly one of ListenAddr
	// and Listener is set; a given Listener is owned by the transport from then on.
	ListenAddr string
	Listener   net.Listener
	QueueSize  int // envelopes per peer queue; 0 means DefaultQueueSize
	MaxBatch   int // envelopes per Batch; 0 means DefaultMaxBatch
	MaxMsgSize int // bytes per gRPC message, both ways; 0 means DefaultMaxMsgSize
	// TLS, when set, secures both the server and the client side with mutual TLS: it must hold the
	// node's certificate, RootCAs to verify peers as servers and ClientCAs (with ClientAuth) to
	// verify them as clients. Every node's certificate must name it (pki.NodeID, a URI SAN
	// tidemark://<ClusterID>/node/<id>): a peer is accepted, and dialled, only as the node its
	// certificate names (identity.go). nil means plaintext, where a peer is whoever it claims.
	TLS        *tls.Config
	Registerer prometheus.Registerer // nil: metrics are kept but not registered
	// Logger should already carry the node's fields (node, cluster), as the server's does; the
	// transport adds peer, addr and stream. nil: no logs.
	Logger *zap.Logger

	// UnknownPeer, when set, is called with the addressee of every send dropped because SetPeers
	// has not named it. It must not block. The server reads the registry then: its watch may lag
	// behind a node that registered a moment ago.
	UnknownPeer func(peer string)

	// BackoffMin and BackoffMax bound the redial delay; 0 means 50ms and 3s.
	BackoffMin, BackoffMax time.Duration
	// HandshakeTimeout bounds how long a dialed stream may take to be accepted; 0 means 10s.
	HandshakeTimeout time.Duration
}

// withDefaults validates c and returns a copy with every zero value filled in.
func (c GRPCConfig) withDefaults() (GRPCConfig, error) {
	switch {
	case c.NodeID == "":
		return c, fmt.Errorf("messaging: config: NodeID is empty")
	case c.ClusterID == "":
		return c, fmt.Errorf("messaging: config: ClusterID is empty")
	case c.ListenAddr == "" && c.Listener == nil:
		return c, fmt.Errorf("messaging: config: neither ListenAddr nor Listener is set")
	case c.ListenAddr != "" && c.Listener != nil:
		return c, fmt.Errorf("messaging: config: both ListenAddr %q and a Listener are set", c.ListenAddr)
	case c.QueueSize < 0:
		return c, fmt.Errorf("messaging: config: QueueSize %d is negative", c.QueueSize)
	case c.MaxBatch < 0:
		return c, fmt.Errorf("messaging: config: MaxBatch %d is negative", c.MaxBatch)
	case c.MaxMsgSize < 0:
		return c, fmt.Errorf("messaging: config: MaxMsgSize %d is negative", c.MaxMsgSize)
	case c.BackoffMin < 0 || c.BackoffMax < 0:
		return c, fmt.Errorf("messaging: config: negative backoff %v..%v", c.BackoffMin, c.BackoffMax)
	case c.HandshakeTimeout < 0:
		return c, fmt.Errorf("messaging: config: HandshakeTimeout %v is negative", c.HandshakeTimeout)
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxMsgSize == 0 {
		c.MaxMsgSize = DefaultMaxMsgSize
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = defaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = defaultBackoffMax
	}
	if c.BackoffMax < c.BackoffMin {
		return c, fmt.Errorf("messaging: config: BackoffMax %v is below BackoffMin %v", c.BackoffMax, c.BackoffMin)
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = defaultHandshakeTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}

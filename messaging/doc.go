// Package messaging owns node-to-node transport for tidemark: it carries heartbeatpb.Envelope
// values between nodes and hands each received envelope to a Handler.
//
// In: envelopes from the cores (Transport.Send, routed by Envelope.To), the peer set from the node
// registry (Transport.SetPeers: node ID -> gRPC address). Out: envelopes to the local Handler, and
// counters (Transport.Stats, prometheus) of what was sent, received and dropped, and why.
//
// Two implementations share the Transport interface:
//   - GRPCTransport (NewGRPC): real gRPC. Every pair of nodes shares ONE bidirectional
//     heartbeatpb.Messenger stream; the node with the lexically smaller ID dials, the other accepts,
//     and both directions use that stream. The dialer names itself, the node it wants and the
//     cluster in gRPC metadata; the acceptor checks them and answers with a header naming itself,
//     so a stream that reached the wrong process is never used. A newer stream for a pair replaces
//     the older one (restart, races). Broken streams are redialed with exponential backoff and jitter.
//   - MemNetwork (NewMemNetwork, Join): in memory, for unit tests, with partitions and drops.
//
// Identity (identity.go): with TLS the node IDs in the metadata are claims checked against
// certificates. Each node's certificate names its node ID in a URI SAN (pki.NodeID:
// tidemark://<cluster>/node/<id>); the acceptor refuses, with PermissionDenied and a log line
// naming both IDs and the remote address, a stream whose claimed sender is not the node of the
// dialer's certificate, and the dialer refuses a server whose certificate is not the node it
// dialled. The receiver drops every envelope whose From is not the stream's node, so a stream
// cannot change identity later and only a stream authenticated as B can replace B's stream.
// Without TLS the claims cannot be checked: any process that reaches the listen address can
// speak as any node.
//
// Delivery is best effort by design: the cores number their envelopes and resend, so the transport
// may drop (a full per-peer queue, an unknown peer, a bad batch) but never blocks the caller. Each
// peer has one bounded queue and one sender goroutine that drains it into Batches; each stream has
// one receiver goroutine. No goroutine exists per span, dispatcher or envelope.
//
// Ordering: the Handler is called for the envelopes of one peer one at a time, in the order that
// peer sent them on the current stream. Envelopes of different peers may be handled concurrently,
// so a Handler must be safe for concurrent use, and should hand work off quickly (a slow Handler
// stalls only its peer's stream). Envelopes a node sends to itself never touch the network but
// go through the same queue-and-goroutine path, so Send never calls the Handler on the caller's
// goroutine.
//
// Ownership: Send takes ownership of the envelope; the caller must not modify it afterwards.
//
// Wire format: gogo protobuf through a gRPC codec named "gogoproto" that both ends force, so the
// golang/protobuf runtime is never involved. PeerCodec and PeerMetadata export the codec and the
// dialer's metadata for tests/wireclient, which plays a hostile peer. A Batch that fails to decode is counted and dropped
// without ending the stream.
package messaging

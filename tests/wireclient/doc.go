// Package wireclient is a hostile peer for tests: it dials a node's gRPC port exactly as another
// node does (the messaging codec, the Messenger stream, the dialer's metadata) and sends what
// it is told to, however forged: envelopes with higher epochs, unregistered or borrowed sender
// names, replays of old envelopes, bytes that decode to nothing.
//
// In: a node's address, the cluster ID, the sender name to claim and the target node ID; then
// envelopes (Send) or raw bytes (SendRaw). Out: whether the handshake was accepted (Dial's
// error), nothing else: a node never answers a forgery, so the effect must be observed on the
// cluster (its status, its sinks, its rejection counters).
//
// Forgeries (forge.go) builds the envelopes of the attacks of issue 9 from what an observer can
// learn about a cluster: the maintainer, its epoch, and which dispatchers work where.
package wireclient

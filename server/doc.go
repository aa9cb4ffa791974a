// Package server wires one tidemark node: the etcd connection and session, the node registry
// entry, the gRPC transport, and per changefeed a dispatcher manager loop and an election
// campaign that, when won, runs the changefeed's maintainer loop. It also serves the HTTP status
// API.
//
// The deterministic cores (dispatchermanager.Manager, maintainer.Maintainer) know nothing of
// goroutines, etcd or sockets. Each runs on exactly one goroutine here, its "loop", which feeds it
// messages, ticks and membership changes, then drains Ready: the maintainer loop persists the
// checkpoint (a compare-and-swap guarded by its election key) before it sends what Ready holds.
//
// Liveness is the etcd session. When the session ends (lease lost, etcd unreachable for longer
// than the TTL), every other node treats this one as dead and re-places its spans; so the node
// stops every dispatcher and maintainer of that session at once and starts again with a new
// session and a new incarnation, empty. A node never keeps working on an expired lease. The
// session timing (session.go) keeps that recovery bounded after any number of etcd outages: the
// wait between attempts resets after a healthy session, every teardown call to etcd has a
// deadline, and a new session revokes the lease of the one lost before it.
//
// Health is the sinks'. Each dispatcher manager loop reports its manager's SinkHealth; while any
// is unhealthy (failing longer than Config.UnhealthyAfter) the health marker keeps
// admin/unhealthy/<node> on the session's lease, and deletes it once every sink writes again.
// Maintainers follow the marks with the admin snapshot and move spans off marked nodes.
//
// Identity (identity.go): with peer TLS the node's certificate must name its node ID (pki); a
// node configured, or stored, as another node does not start, and a node with no ID yet takes
// the certificate's. Without peer TLS it warns once at start that peers are not authenticated.
// The status API (status.go) then serves HTTPS with the same certificate and CA; pprof is
// mounted only when asked for.
package server

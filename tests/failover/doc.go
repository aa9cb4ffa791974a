// Package failover tests the real thing: `tidemark server` processes built from this tree, talking
// real gRPC over loopback, on etcd, killed with SIGKILL. The harness (harness.go) builds the
// binary once, starts etcd and nodes, reads every node's sink file, and checks the invariants of
// DESIGN.md over the whole run.
package failover

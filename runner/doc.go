// Package runner performs what a core's Ready asks, the one step every driver of the cores
// shares: the server's loops, the simulator (tests/sim) and the maintainer's own live tests.
//
// The cores (maintainer, dispatchermanager) never touch etcd or the network: they emit a Ready
// and wait for Advance. Performing a maintainer's Ready has an order that safety depends on:
// persist the checkpoint first (a guarded, forward-only write), evict the nodes it names (also
// guarded), send its messages, and only then Advance. A dispatcher manager's Ready is only
// messages. The etcd side and the transport are small interfaces, so the server plugs in etcd
// and gRPC while the simulator plugs in its etcd view and its lossy network, faults included.
//
// This package imports no core: a core's Ready converts to Ready here (the fields match), so the
// maintainer's own tests can use the runner without an import cycle.
package runner

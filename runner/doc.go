// Package runner performs what a core's Ready asks, the one step every driver of the cores
// shares: the server's loops, the simulator (tests/sim) and the maintainer's own live tests.
//
// The cores (maintainer, dispatchermanager) never touch etcd or the network: they emit a Ready
// and wait for Advance. Performing a maintainer's Ready: hand its checkpoint to the store
// (a guarded, forward-only write), evict the nodes it names (also guarded), send its messages,
// and only then Advance. A store error (the term is over) sends nothing. The checkpoint write
// need not finish first: the core stamps its messages with the checkpoint etcd already holds
// and learns of a new one only from the write's result (CheckpointPersisted). So the server
// writes from a CheckpointWriter goroutine, and its loop never waits on a raft commit for it,
// while the simulator answers the write a tick later. A dispatcher manager's Ready is only
// messages. The etcd side and the transport are small interfaces, so the server plugs in etcd
// and gRPC while the simulator plugs in its etcd view and its lossy network, faults included.
//
// This package imports no core: a core's Ready converts to Ready here (the fields match), so the
// maintainer's own tests can use the runner without an import cycle.
package runner

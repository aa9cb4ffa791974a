// Package dispatcher owns the worker for one span in one mode: the Dispatcher and Factory
// interfaces the dispatcher manager drives, the built-in simulated dispatcher, and the sinks it
// writes to.
//
// The rules every implementation keeps, built in or a user's own (package node), are the doc
// comment of Dispatcher: idempotent create per dispatcher ID, processing strictly above the start
// ts, a final ts from Stop after which nothing is written, and checkpoints never above what the
// sink made durable.
//
// In: a DispatcherConfig (ID, span, start ts, mode) and the table's TableConfig when a dispatcher
// is created; the caller's clock on every Poll and Stop.
// Out: a checkpoint ts and a load figure from Poll, a final checkpoint from Stop, and one sink
// Record per processed ts range (from, to] of a span. ReadRecords parses a sink file back so that
// checkers (package sinkcheck) can verify, across every node's sink file, that each key point's
// ranges join without holes (invariant I2) and that no key was processed twice at one ts by two
// dispatchers (evidence against I1).
//
// Sinks recover from transient errors (a full disk, a failed fsync) by themselves: a failed
// write keeps its records, cuts the file back to the last durable offset and is retried with a
// backoff on a fresh file by a later Flush; meanwhile Append refuses with ErrSinkUnavailable so
// dispatchers hold their checkpoints. docs/sinks.md states the contract a new sink keeps.
//
// The etcd change-data dispatcher and its file and mirror sinks live in package etcdcdc; a
// dispatcher that fails on its own (not through the factory's sink) implements ErrorReporter.
// A kind that moves real data reports it to the node's metrics through DataPlane (events and
// bytes replicated, source and sink errors, and a lag function the node reads at scrape time).
//
// A simulated dispatcher has no goroutine of its own: it only works when polled, so a node with a
// million spans costs a million small structs, not a million goroutines.
package dispatcher

// Package embedetcd runs a single-member etcd server inside the process, for tests and for the
// playground. It is kept apart from package etcdutil so that only code which wants a server links
// the etcd server module; a tidemark node talks to an external etcd through etcdutil alone.
//
// What goes in: a Config (data dir, name, URLs, raft timing, log level), or a testing.TB for
// StartForTest. What comes out: a running *Server with its client URLs, and clients bound to the
// test's cleanup order. Close stops the member and waits until it has stopped.
package embedetcd

// Package etcdutil owns everything tidemark stores in etcd: the key layout under
// /tidemark/<cluster>/, the JSON values kept there, the node registry, the changefeed catalogue,
// the per-changefeed maintainer election and the writes only the elected maintainer may make.
//
// What goes in: a *clientv3.Client (from Connect) or a *concurrency.Session (whose lease ties
// registry and election keys to a live process), the cluster ID wrapped in Keys, and the values to
// store. What comes out: typed values decoded from etcd, snapshot channels that follow changes
// (WatchNodes, WatchChangefeeds, WatchLeader), and a Leadership whose epoch fences every
// maintainer-only write.
//
// Invariants kept here: the changefeed checkpoint is only ever advanced by a compare-and-swap, so it
// never goes backwards (I3); status and checkpoint writes succeed only while the writer's election
// key still has the create revision it won with (its epoch), so a deposed maintainer cannot write.
//
// The package is client-side only. The embedded etcd server used by tests and the playground lives
// in etcdutil/embedetcd so that the server binary does not link the etcd server.
// docs/etcd-layout.md describes every key and value.
package etcdutil

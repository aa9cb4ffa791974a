// Package node runs a tidemark node inside your own Go program, with dispatchers of your own.
//
// A node is what `tidemark server` runs: it registers in etcd, takes part in the maintainer
// elections of every changefeed and runs the dispatchers the maintainers place on it. What a
// dispatcher does is the business of its kind: a changefeed names a kind
// (`tidemark ctl changefeed create NAME --dispatcher KIND`, field "dispatcher" of its etcd
// definition), and each node builds that changefeed's dispatcher factory with the constructor it
// has under that name. The built-in kind "sim" is always there; Run adds yours.
//
// In: a Config (the same as server.Config: cluster ID, etcd endpoints, addresses, data dir) and
// kinds, a map from kind name to constructor. Out: a running node until ctx ends; Run returns
// nil after a graceful stop.
//
// A constructor is called once per changefeed of its kind on this node, when the changefeed
// starts there; the factory it returns creates one dispatcher per span placed on the node. The
// rules a dispatcher must keep (idempotent create, start strictly above the start ts, a final
// ts after which nothing is written, checkpoints never above what the sink made durable) are
// the doc comment of dispatcher.Dispatcher. examples/counter is a complete program.
//
// A node that lacks a changefeed's kind logs it and does not serve that changefeed; the
// maintainer then places the spans on the nodes that do. Run the same kinds on every node of a
// cluster unless you mean to pin a changefeed to some of them.
package node

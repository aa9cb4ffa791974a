// Package sim is tidemark's deterministic failover simulator.
//
// Every maintainer and every dispatcher manager of one cluster runs in one goroutine, as the
// real cores (maintainer.Maintainer, dispatchermanager.Manager with the simulated dispatcher
// writing to a dispatcher.MemSink), driven by a manual clock. Around them the package models what
// the server and etcd do: a registry of leased nodes, a scripted election that hands out
// increasing epochs, the etcd leader watch (SetEpoch), the guarded forward-only checkpoint CAS,
// the lease guard (a node whose lease is gone stops acting at once and restarts empty), and a
// network that a seeded *rand.Rand delays, reorders, duplicates and drops.
//
// Faults are events, scripted (testdata/*.txt scenarios) or drawn from the seed: crash the
// maintainer at any point, including between sending any two messages of one Ready; crash and
// restart nodes (a new incarnation, dispatchers gone, unflushed sink records lost); partitions;
// lease expiry; an old maintainer that wakes up after a new one took over and keeps sending; a
// Byzantine sender (byzantine.go) that injects envelopes with arbitrary epochs, sender names and
// bodies drawn from real requests. The nodes' dispatcher managers learn the registry and the
// election leader as the server's watches tell them, and answer their leader queries as an etcd
// read does (etcdview.go).
//
// Invariants I1 to I5 (../../../shared/DESIGN.md) are checked after every delivered message
// and every tick (I5 strictly: a node acts only on the epoch and sender etcd confirmed to it), I6 at the end: once faults stop the cluster converges within a bounded
// simulated time; then the data check I8 (source.go): the changefeed's source is modelled as a
// revisioned log of puts and deletes over a few keys of every table, written at a seeded rate on
// the simulated clock; every dispatcher replicates its span's events above its start ts into its
// node's sink before it claims the range, and after every run the sinks are held to the rule the
// real etcd dispatcher's sinks are (etcdcdc.CheckFileSinks): every source event in (start, final
// checkpoint] of every span is in a sink, in revision order per dispatcher and key, repeats only
// as replays, nothing invented. A violation stops the run with the seed and a readable trace of the last
// events. Every bug found becomes a scenario file in testdata/ that stays in the suite.
//
// In: a Config (seed, cluster size, fault mix) or a scenario script. Out: nil or a *Violation.
package sim

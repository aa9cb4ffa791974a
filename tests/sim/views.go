package sim

// The Cluster's concerns cut apart: each view embeds the cluster whose state it reads and
// changes, and carries the methods of one concern, so Cluster itself keeps its API (scripts and
// tests call it) and the run loop. A view is built once, in New.

// forger is the Byzantine sender (byzantine.go).
type forger struct{ *Cluster }

// etcdView is etcd as the nodes and maintainers see it: registry, leader watch and reads,
// the guarded checkpoint (etcdview.go, ready.go).
type etcdView struct{ *Cluster }

// checker checks the invariants I1-I7 and convergence (invariants.go).
type checker struct{ *Cluster }

// script carries the scripted maintainer kills and the intents they leave (script.go).
type script struct{ *Cluster }

// faulter injects the random faults and stops nodes (faults.go).
type faulter struct{ *Cluster }

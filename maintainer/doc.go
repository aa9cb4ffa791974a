// Package maintainer owns one changefeed's schedule on the node that won its election: the span
// DB (every span of every table in every mode, absent, scheduling or replicating), the bootstrap
// phase, the schedulers, node join and leave handling and the changefeed checkpoint.
//
// The Maintainer is a deterministic core shaped like raft's RawNode. In: envelopes from nodes
// (Step), node membership (NodeJoined, NodeLeft) and ticks, each with `now`. Out: Ready, holding
// the envelopes to send (per destination: at most one bootstrap request, one heartbeat response,
// one batched ScheduleDispatcherRequests and one batched MergeDispatcherRequests) and the checkpoint to persist, released by Advance.
// The runner persists the checkpoint before it sends.
//
// Choices worth knowing:
//   - Bootstrap: every live node is asked for its dispatchers and gets no work until it answers;
//     the schedule is restored (bootstrap.Restore) once all have answered or left. A node silent
//     past BootstrapTimeout may still run dispatchers, so it is never assumed dead: Ready.Evict
//     asks the runner to delete its registration (guarded by the election key), which stops the
//     node's dispatchers; the restore goes on when it leaves, or when it answers after all.
//     A node that joins later is asked the same way; its working dispatchers the span DB does
//     not know are removed. A node whose process restarted (new envelope incarnation) is judged
//     by its next full heartbeat.
//   - Schedulers: the basic scheduler puts absent spans on the least-loaded ready node (bounded
//     per round), also while operators restored by a bootstrap still run; the balance scheduler
//     moves spans from the most to the least loaded node, only when every span is replicating,
//     no operator is in flight and every restored operator has ended. Their planning steps
//     (placeAbsent, planMoves) are pure functions; the rest reads the span DB directly.
//   - Operators that get no answer: a phase with neither progress nor a refusal for
//     PhaseTimeout is rolled back by the operator controller (operator.Aborter), so no single
//     operator holds a changefeed up.
//   - Split and merge schedulers: a span whose load stays above the split threshold for several
//     reports is split by key (both modes alike); adjacent cold spans of a table are gathered on
//     one node by Moves and merged, never into a span the split scheduler would cut again; a
//     table cools down after each. Table changes (UpdateConfig) add spans and remove whole
//     tables; nodes get the new config in a bootstrap request, resent until answered.
//   - Heartbeats: a full report is the node's whole truth, so a replicating span whose dispatcher
//     it leaves out goes back to absent; a working dispatcher nobody knows is removed once no
//     other operator holds its span (one operator per span and mode, invariant I4).
//   - Checkpoint: the minimum over all spans, absent spans counting with the ts they resume
//     from; it is asked to be persisted only when it moved forward.
//
// No goroutines, sockets, clock or global randomness in here; a single goroutine drives it.
package maintainer

// Package maintainer owns one changefeed's schedule on the node that won its election: the span
// DB (every span of every table in every mode), the bootstrap phase, the schedulers, admin
// requests, node join and leave handling and the changefeed checkpoint.
//
// The Maintainer is a deterministic core shaped like raft's RawNode. In: envelopes from nodes
// (Step), node membership (NodeJoined, NodeLeft), admin requests (Admin), config changes
// (UpdateConfig), drained and unhealthy node sets, and ticks, each with `now`. Out: Ready, holding
// the envelopes to send (per destination: at most one bootstrap request, one heartbeat response,
// one batched ScheduleDispatcherRequests and one batched MergeDispatcherRequests), the
// checkpoint to persist and the nodes to evict, released by Advance; admin answers come out of
// TakeAdminResults; Status, Spans and Operators answer queries (in package api's JSON types).
// The runner writes the checkpoint off the loop and reports it (CheckpointPersisted); messages
// carry only a checkpoint etcd is known to hold, so nothing waits for the write.
//
// The parts, each in its own files; Maintainer (maintainer.go, step.go, bootstrap.go,
// tables.go) only routes inputs to them and holds what they share:
//   - spanDB (spandb.go, lifecycle.go, spandb_lookup.go, spankeys.go, absent_queue.go): one
//     record per span and mode with
//     one lifecycle enum (absent, adding, changing, replicating, retired), indexes by node,
//     table and dispatcher, the absent FIFO and per-state counts. A retired span is a tombstone
//     whose ID stays valid (IDs are age order, never reused); reclaim empties it at the end of a
//     tick once no admin request reads it. Records hold no pointer: keys are in one arena and
//     node names numbered (spankeys.go), read through spanOf and nodeOf.
//   - opRunner (ops.go): every operator starts through startOp (take IDs, controller.Add,
//     classify a refusal, commit IDs, hold the spans, queue the first requests), and finished
//     operators' results are applied to the span DB (applyFinished). Bootstrap resumes restored
//     operators through it too.
//   - Schedulers (scheduler.go place, balance.go, split.go, merge.go, drain.go): functions of a
//     read-only schedView (view.go) that act only through a starter (the opRunner), so a test
//     can record their intents. Their planning steps (placeAbsent, planMoves, planTotalMoves,
//     nodePicker, coldRuns) are pure.
//   - adminQueue (admin*.go): admin requests, one adminOp type per kind in flight (move, split,
//     merge; drains wait for their node to empty), each answered from what the span DB shows
//     once its operators are done. Refusals state facts and name an admin.Reason; what to type
//     is the CLI's business.
//   - nodeSet (nodes.go): live nodes with their bootstrap progress, and the drained and
//     unhealthy nodes that get no new spans. outbox (outbox.go): traffic per node until Ready.
//     loadTracker (loads.go), configPush (config_push.go), tableChanges (tables.go) and
//     spanErrors (health.go) keep what split/merge, config pushes, table removals and erroring
//     dispatchers need between rounds.
//
// Choices worth knowing:
//   - Bootstrap: every live node is asked for its dispatchers and gets no work until it answers;
//     the schedule is restored (bootstrap.Restore) once all have answered or left. A node silent
//     past BootstrapTimeout may still run dispatchers, so it is never assumed dead: Ready.Evict
//     asks the runner to delete its registration (guarded by the election key), which stops the
//     node's dispatchers; the restore goes on when it leaves, or when it answers after all.
//     A node that joins later is asked the same way; its working dispatchers the span DB does
//     not know are removed. A node whose process restarted (new envelope incarnation) is judged
//     by its set: its digest no longer matches the mirror, so its listing is asked for.
//   - Tick order: operator resends, admin requests (they take operator slots first), the drain
//     scheduler, removed tables, the basic scheduler (placement) and, once every operator a
//     bootstrap restored has ended, split and merge, then balance (only when every span is
//     replicating and no operator is in flight).
//   - Operators that get no answer: a phase with neither progress nor a refusal for
//     PhaseTimeout is rolled back by the operator controller (operator.Aborter), so no single
//     operator holds a changefeed up.
//   - Split and merge schedulers: a span whose load stays above the split threshold for several
//     reports is split by key (both modes alike); adjacent cold spans of a table are gathered on
//     one node by Moves and merged, never into a span the split scheduler would cut again; a
//     table cools down after each. Table changes (UpdateConfig) add spans and remove whole
//     tables; nodes get the new config in a bootstrap request, resent until answered.
//   - Heartbeats: statuses come only when a state changes; each heartbeat carries the node's
//     watermarks and the digest of its set, which the maintainer checks against its mirror of
//     the node (mirror.go). On a match the watermarks advance the spans the node serves and a
//     replicating span whose dispatcher the set lacks goes back to absent; on a mismatch the
//     node is asked for its full listing, the node's whole truth, reconciled the same way. A
//     working dispatcher nobody knows is removed once no other operator holds its span (one
//     operator per span and mode, invariant I4).
//   - Chunks (chunks.go): bootstrap answers and full listings may come in pieces; they are put
//     together in any order, acted on only when the last is in, and a listing older than an
//     envelope already applied is dropped whole. Pieces of older answers, changed totals and
//     indexes past the total are refused; duplicates are dropped; a lost piece is repaired by
//     the bootstrap resend (counted from the last piece) or the next digest mismatch.
//   - Checkpoint: the minimum over all spans, absent spans counting with the ts they resume
//     from; it is asked to be persisted only when it moved forward.
//
// No goroutines, sockets, clock or global randomness in here; a single goroutine drives it.
package maintainer

// Package dispatchermanager owns the worker side of one changefeed on one node: its dispatchers,
// the journal of in-flight requests, heartbeats to the maintainer and answers to bootstrap
// requests.
//
// The Manager is deterministic in the raft RawNode shape: envelopes go in through Step, time
// through Tick (both take now), envelopes to send come out of Ready and are released by Advance.
// It has no goroutines, sockets or clock; dispatchers are reached through a dispatcher.Factory.
//
// The Manager composes its parts, each a type with its own state: gate (gate.go, epoch.go: etcd's
// leader, the registry, the ordering filter and held envelopes), dispatcherTable (dispatchers.go:
// the dispatchers, their overlap index and removal records), journal (journal.go, schedule.go,
// merge.go: the requests in flight), sinkState (sinkhealth.go) and the header and body checks on
// Config (validate.go). The Manager's own methods are the API and the steps that span parts.
//
// In: envelopes from the maintainer (bootstrap requests, schedule and merge requests, heartbeat
// responses); from etcd, through the runner, the registered nodes (SetNodes) and the election
// leader: epoch and node (SetEpoch from the leader watch, OnLeaderReply answering a LeaderQuery).
// Every envelope passes, before anything is touched, the header checks (cluster, changefeed,
// receiver, body kind), the sender check (a registered node), the ordering filter (per sender:
// incarnation and seq must be newer than the last accepted) and fencing against the leader etcd
// confirmed: a lower epoch is refused, the same epoch from another sender is refused, and a higher
// epoch is held (gate.go), never adopted on the sender's word.
// Out: heartbeats (each Tick with news: statuses of dispatchers whose state changed, the
// watermarks, least durable checkpoint per mode of the working dispatchers, and the digest of the
// set; the journal every HeartbeatInterval; the full listing when the maintainer asks for it, see
// docs/protocol.md) and bootstrap answers, always to the confirmed maintainer node, stamped with the confirmed epoch; and leader
// queries (LeaderQuery) for the runner to read etcd with. An answer or heartbeat over
// Config.ChunkBytes goes in numbered pieces sent back to back (chunks.go; docs/protocol.md,
// "Chunks").
//
// # Epochs are confirmed, never asserted
//
// A held envelope waits (at most maxHeld of them, at most holdTimeout) until etcd names exactly its
// epoch and sender, and is then stepped as if it had just arrived. etcd naming anything else drops
// held envelopes of a lower or equal epoch. A leader read drops more: it starts after the core
// asked for it, so an envelope held by then whose epoch and sender it does not name came from no
// maintainer that existed when it arrived. The watch alone keeps higher epochs, as it may lag a real
// new maintainer. A confirmed epoch never goes back. Without TLS, a sender that claims the
// confirmed leader's name and epoch cannot be told from the leader; docs/protocol.md says so.
//
// # Durable checkpoints and sink errors
//
// A status carries a dispatcher's durable checkpoint: the one it had when the factory's sink
// last flushed successfully, never more, so a reported checkpoint survives a crash of the node.
// A failed flush holds nothing back: heartbeats and bootstrap answers still go out, with the
// durable checkpoints and the flush's error on every working dispatcher (DispatcherStatus.error),
// and every Tick tries again (the sink spaces its own retries). SinkHealth says since when the
// sink fails and, from the now it is given, whether that has lasted UnhealthyAfter; the runner
// turns that into the node's unhealthy mark. A merge starts its merged dispatcher from the
// sources' durable checkpoints.
//
// # The journal
//
// The journal is three maps. Its entries let a new maintainer rebuild every operator in flight
// from the bootstrap answers alone.
//
//   - current (ModeDefault schedule requests) and redo (ModeRedo schedule requests), keyed by
//     span.Key. An entry is added when a Create or Remove is accepted (validated, no conflicting
//     entry of another operator for the span, no overlap with a working dispatcher), at
//     StageAccepted. It moves to StageApplied as soon as its local effect is done: the dispatcher
//     exists and works (Create), or it is stopped with its final checkpoint (Remove; an unknown
//     dispatcher counts as removed at once). An effect that failed is retried on each Tick and on a
//     resend. The entry is removed only when the maintainer lists its operator ID in
//     HeartBeatResponse.finished, whatever its stage.
//   - merge, keyed by the merged dispatcher's ID. An entry is added, at MergeAccepted, when a merge
//     request is valid (sources exist, work, share table and mode, are adjacent and together equal
//     the merged span). Each Tick moves it one stage: MergeSourcesStopped (all sources stopped,
//     merged ts = the least of their final checkpoints), MergeCreated (the merged dispatcher works
//     from that ts), MergeDone (sources closed and reported Removed). It is removed only when the
//     maintainer acknowledges its operator.
//
// A dispatcher stopped by a remove half (OpRemove, OpMove, OpSplit) or by a merge stays as a
// removal record (state Stopped, final checkpoint) in the set, every listing and bootstrap answer
// until the maintainer acknowledges the operator that stopped it; then it is closed, reported
// once as Removed, and forgotten. Its Stopped status goes out once; a lost one shows as a digest
// mismatch and the maintainer asks for the listing. So a final checkpoint is never lost while a
// maintainer fails over.
//
// A request that conflicts (another operator's entry for the span, overlap with a working
// dispatcher, a dispatcher inside an in-flight merge) is refused: the first one is left untouched
// and the refusal travels as a RequestRejection in the next heartbeat. The same request again
// (same operator ID) is a resend: idempotent, its status is reported again. Every resend is
// answered: when the effect no longer holds (a create whose dispatcher another operator has since
// removed) it is refused with that fact, never ignored. An operator may take back its own create
// with a Remove of the same dispatcher (its phase timed out, or its table left): the Remove
// replaces the Create entry; a create never applied is reported Removed at once, an applied one
// is stopped and leaves a removal record like any remove half.
//
// A prepare (the destination half of a make-before-break Move, prepare.go) holds a Prepared
// dispatcher in the set but not among the working ones; the same operator's Create commits it,
// its Remove abandons it, and so does the acknowledgement of its operator without a commit.
package dispatchermanager

// Package sinkcheck verifies, from the sink records of every node, what the dispatchers of a
// changefeed actually processed.
//
// In: records (dispatcher.Record, typically read back with dispatcher.ReadRecords from each
// node's sink file), the changefeed's start ts, and optionally the table IDs that must be covered
// in full. Out: a Report with
//   - Gaps: key ranges and ts ranges nobody processed, between the start ts and Bound, the lowest
//     latest end over all key points (invariant I2: per key point the processed ranges join
//     without holes);
//   - Overlaps and Repeats: key ranges held by two different dispatchers of the same mode. When
//     every record carries its wall time (Record.At), each dispatcher's ownership window over the
//     shared keys is the span from its first to its last record: two windows that overlap (by
//     more than WindowSlackMs, the precision of the stamps) are an Overlap (two working owners
//     at once, I1), and a ts range a later owner processed again
//     after the earlier one's window closed is a Repeat (a replay after a move, split, merge or
//     crash; allowed, I2 forbids only starting above). Records without wall times (old files)
//     fall back to a shape rule that relies on the simulated dispatcher's checkpoint following
//     the clock: a dispatcher resuming from an older checkpoint catches up past the previous
//     owner's end in its first record (a Repeat); one whose records end inside the other's range
//     was advancing alongside it (an Overlap).
//
// The check sweeps over the sorted span boundaries of each table and mode, so its cost grows with
// the number of distinct spans and dispatchers, not with the number of keys or records.
package sinkcheck

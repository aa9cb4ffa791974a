// Package sinkcheck verifies, from the sink records of every node, what the dispatchers of a
// changefeed actually processed.
//
// In: records (dispatcher.Record, typically read back with dispatcher.ReadRecords from each
// node's sink file), the changefeed's start ts, and optionally the table IDs that must be covered
// in full. Out: a Report with
//   - Gaps: key ranges and ts ranges nobody processed, between the start ts and Bound, the lowest
//     latest end over all key points (invariant I2: per key point the processed ranges join
//     without holes);
//   - Overlaps and Repeats: key and ts ranges processed by two different dispatchers of the same
//     mode. Records carry no wall time, so the two are told apart by the shape of the records of
//     the simulated dispatcher, whose checkpoint follows the clock: a dispatcher resuming from an
//     older checkpoint (after a move, split, merge or crash) catches up past the previous owner's
//     end in its first record (a Repeat, allowed); one whose records end inside the other's
//     range was advancing alongside it (an Overlap: evidence of two owners at once, I1).
//
// The check sweeps over the sorted span boundaries of each table and mode, so its cost grows with
// the number of distinct spans and dispatchers, not with the number of keys or records.
package sinkcheck

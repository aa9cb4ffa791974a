// Package bootstrap rebuilds a changefeed's schedule after a maintainer takes over.
//
// In: the changefeed config, every live node's MaintainerBootstrapResponse (its dispatchers,
// their states and checkpoints, its journal of in-flight requests and merges) and the persisted
// changefeed checkpoint. Out: a Plan: spans that keep replicating where they are, the in-flight
// operators to resume at the phase they reached (rebuilt through operator.Restore, the run
// path's own state machines), spans that are absent and the ts each resumes from, working
// dispatchers the maintainer must remove (Conflicts), operators to acknowledge, and every
// inconsistent record (Unresolved) with what the plan does about it, never dropped.
//
// Restore is a pure function: the same input gives the same plan, in the same order. It is
// built for a million spans: one sort per table and mode, maps only for the few dispatchers
// operators name.
package bootstrap

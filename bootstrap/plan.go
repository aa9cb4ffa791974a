package bootstrap

import (
	"errors"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// ErrInvalid wraps every error about a malformed config.
var ErrInvalid = errors.New("bootstrap: invalid input")

// Placement is one span in one mode served by one dispatcher on one node.
type Placement struct {
	Span       heartbeatpb.TableSpan
	Mode       heartbeatpb.Mode
	Node       string
	Dispatcher heartbeatpb.DispatcherID
	Checkpoint uint64
}

// Absent is a span in one mode that no dispatcher serves; a new one starts from ResumeTs.
type Absent struct {
	Span     heartbeatpb.TableSpan
	Mode     heartbeatpb.Mode
	ResumeTs uint64
}

// ConflictReason says why a working dispatcher must be removed.
type ConflictReason int

const (
	// ConflictOverlap: it overlaps a dispatcher of the same mode that was kept.
	ConflictOverlap ConflictReason = iota
	// ConflictTableRemoved: its table is not in the changefeed.
	ConflictTableRemoved
	// ConflictModeOff: it is a redo dispatcher while redo is off.
	ConflictModeOff
)

func (r ConflictReason) String() string {
	switch r {
	case ConflictOverlap:
		return "overlap"
	case ConflictTableRemoved:
		return "table-removed"
	case ConflictModeOff:
		return "redo-off"
	}
	return "unknown"
}

// Conflict is a working dispatcher the maintainer removes with a Remove operator.
type Conflict struct {
	Placement
	Reason ConflictReason
}

// UnresolvedKind names what kind of record could not be resolved.
type UnresolvedKind int

const (
	// UnresolvedStopped: a Stopped dispatcher record awaiting its operator's acknowledgement.
	UnresolvedStopped UnresolvedKind = iota
	// UnresolvedJournal: an in-flight schedule request from a node's journal.
	UnresolvedJournal
	// UnresolvedMerge: an in-flight merge request.
	UnresolvedMerge
	// UnresolvedMalformed: a reported dispatcher with a bad span or unknown state.
	UnresolvedMalformed
)

func (k UnresolvedKind) String() string {
	switch k {
	case UnresolvedStopped:
		return "stopped-record"
	case UnresolvedJournal:
		return "journal"
	case UnresolvedMerge:
		return "merge-journal"
	case UnresolvedMalformed:
		return "malformed"
	}
	return "unknown"
}

// Unresolved is a record the plan does not act on yet (full operator restore is later work).
// The maintainer logs each; a Stopped record's final checkpoint may still have raised the
// resume ts of an absent span it covers.
type Unresolved struct {
	Kind       UnresolvedKind
	Node       string
	Operator   heartbeatpb.OperatorID
	Span       heartbeatpb.TableSpan
	Mode       heartbeatpb.Mode
	Dispatcher heartbeatpb.DispatcherID
	Checkpoint uint64
	Detail     string
}

// Plan is what the maintainer applies after bootstrap, all sorted deterministically.
type Plan struct {
	// Checkpoint is the highest checkpoint known to be persisted: the runner's and the nodes'.
	Checkpoint  uint64
	Replicating []Placement
	Absent      []Absent
	Conflicts   []Conflict
	Unresolved  []Unresolved
}

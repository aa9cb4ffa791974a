package bootstrap

import (
	"errors"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
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
	// ConflictOperator: it overlaps a span that a restored operator holds or just placed.
	ConflictOperator
)

func (r ConflictReason) String() string {
	switch r {
	case ConflictOverlap:
		return "overlap"
	case ConflictTableRemoved:
		return "table-removed"
	case ConflictModeOff:
		return "redo-off"
	case ConflictOperator:
		return "operator-span"
	}
	return "unknown"
}

// Conflict is a working dispatcher the maintainer removes with a Remove operator.
type Conflict struct {
	Placement
	Reason ConflictReason
}

// Held is one span (mode) a resumed operator holds. Bound: Dispatcher on Node works on exactly
// this span while the operator runs (the origin of a Move that has not stopped yet); otherwise
// the span is served by nobody until the operator's result binds it, and Node/Dispatcher name
// where the operator is placing it.
type Held struct {
	Span       heartbeatpb.TableSpan
	Mode       heartbeatpb.Mode
	Checkpoint uint64
	Node       string
	Dispatcher heartbeatpb.DispatcherID
	Bound      bool
}

// Resumed is an in-flight operator rebuilt at the phase it reached; the maintainer registers it
// with the controller (AddRestored) and drives it to completion before any scheduler runs.
type Resumed struct {
	Op   operator.Operator
	Held []Held
}

// Completed is an operator whose journal survived but whose reports show it done; its result is
// already part of Replicating and Absent. The maintainer only acknowledges it.
type Completed struct {
	ID      heartbeatpb.OperatorID
	Kind    heartbeatpb.OperatorType
	Outcome operator.Outcome
}

// Ack asks the maintainer to acknowledge operator on node, so the node drops its journal entry
// and removal records: for completed operators and for every operator the plan does not resume.
type Ack struct {
	Node     string
	Operator heartbeatpb.OperatorID
}

// UnresolvedKind names what kind of record is inconsistent.
type UnresolvedKind int

const (
	// UnresolvedMalformed: a reported dispatcher with a bad span, mode or state, or reported twice.
	UnresolvedMalformed UnresolvedKind = iota
	// UnresolvedTableRemoved: a journal entry for a table no longer in the changefeed (or a redo
	// entry while redo is off). The operator is acknowledged, not resumed; its working
	// dispatchers are Conflicts.
	UnresolvedTableRemoved
	// UnresolvedOverlap: two operators for one span. The newer one (higher ID) is kept; the other
	// is acknowledged, not resumed, and its working dispatchers compete like any other.
	UnresolvedOverlap
	// UnresolvedBadOperator: a journal entry whose descriptor cannot be rebuilt (malformed,
	// unsupported kind, or entries of one operator that disagree). Acknowledged, not resumed.
	UnresolvedBadOperator
)

func (k UnresolvedKind) String() string {
	switch k {
	case UnresolvedMalformed:
		return "malformed"
	case UnresolvedTableRemoved:
		return "table-removed"
	case UnresolvedOverlap:
		return "operator-overlap"
	case UnresolvedBadOperator:
		return "bad-operator"
	}
	return "unknown"
}

// Unresolved is an inconsistent record and what the plan does about it (Detail says which).
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

// Plan is what the maintainer applies after bootstrap, all sorted deterministically. The spans
// of Replicating, Absent and every Resumed operator's Held tile each configured table and mode
// exactly once.
type Plan struct {
	// Checkpoint is the highest checkpoint known to be persisted: the runner's and the nodes'.
	Checkpoint  uint64
	Replicating []Placement
	Absent      []Absent
	Resumed     []Resumed
	Completed   []Completed
	Conflicts   []Conflict
	Acks        []Ack
	Unresolved  []Unresolved
}

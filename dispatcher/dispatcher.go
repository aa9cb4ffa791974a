package dispatcher

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// ErrInvalid is wrapped by every error about malformed input to this package (bad config, bad
// sink line).
var ErrInvalid = errors.New("dispatcher: invalid input")

// Dispatcher is the worker for one span in one mode on one node. The dispatcher manager calls it
// from its single loop; implementations need not be safe for concurrent use, and must not block
// that loop (a Poll that waits on the network delays every heartbeat of the changefeed on the
// node): do slow work on a goroutine of your own and let Poll collect its result.
//
// # The contract
//
// Every implementation (the built-in simulated one, a change-data one, a user's own registered
// through package node) keeps these rules; the scheduler's invariants (docs/invariants.md) hold
// only if it does. "ts" is the changefeed's position: a TSO-style timestamp for the simulated
// dispatcher, a source revision for a change-data one; it only has to be totally ordered and the
// same for every node.
//
//  1. Create is idempotent per dispatcher ID. Factory.New may be called again with a
//     DispatcherConfig.Id it has seen before (a retried create after New failed, the same create
//     again after this process restarted). It must then build a dispatcher that behaves as a
//     fresh one from the given start ts, not fail because resources named after the ID exist (a
//     sink file, a fence key), and not let an older incarnation of that ID write again. The
//     manager never holds two working dispatchers of one ID in one process.
//  2. Processing starts strictly above the start ts. DispatcherConfig.StartTs is the last ts
//     whose work is already done for the whole span: the first unit processed is the one just
//     above it, and nothing at or below it is read or written (after any reset the given start
//     ts is the only lower bound; never resume from a position of your own that is lower or
//     higher). If the work above StartTs can no longer be done (the source compacted it away),
//     say so through Poll's checkpoint staying put and an error in the sink's Flush or in logs;
//     never skip ahead silently.
//  3. Poll returns the checkpoint: the highest ts C such that all work of the span in
//     (StartTs, C] has been handed to the sink; it never goes back. The checkpoint a node reports
//     never exceeds what is durably in the sink: the manager reports a polled checkpoint only
//     after Factory.Flush returned nil, so Flush must make durable everything the factory's
//     dispatchers handed over before the Poll calls that preceded it. A sink that cannot make
//     work durable keeps Flush failing (the checkpoint is then held and the error reported) and
//     recovers by itself when the cause clears.
//  4. Stop returns the final ts and nothing above it is ever emitted afterwards. From the moment
//     Stop returns, the dispatcher writes nothing more to any sink, even from goroutines it
//     started (stop them, or fence their writes, before returning). The final ts is the
//     checkpoint as of the stop, never less than a checkpoint Poll returned; the span's next
//     dispatcher starts from it, so work above it that was already written is repeated once by
//     the successor (a replay), never lost. Stop may be called more than once and returns the
//     same final ts each time.
//  5. Close releases resources; it follows Stop, or comes alone when the node shuts down or
//     loses its etcd session (the span is then re-placed from its last reported checkpoint, so
//     a closed dispatcher must also write nothing more).
//
// Load is the span's current load figure in the unit of the changefeed's split and merge
// thresholds (events per second for the built-in dispatchers); 0 when unknown.
type Dispatcher interface {
	ID() heartbeatpb.DispatcherID
	Span() heartbeatpb.TableSpan
	Mode() heartbeatpb.Mode
	// Poll does the work due up to now and reports the checkpoint and current load (rule 3).
	Poll(now time.Time) (checkpointTs, load uint64)
	// Stop ends processing; nothing above finalTs is ever processed or written afterwards
	// (rule 4).
	Stop(now time.Time) (finalTs uint64, err error)
	// Close releases resources; after Stop or on shutdown (rule 5).
	Close() error
}

// ErrorReporter is implemented by a dispatcher that can fail on its own, apart from the
// factory's sink: its source unreachable, its start ts compacted away. Err says why it cannot
// make progress now, nil when it can; the manager reports it in the dispatcher's status.
type ErrorReporter interface {
	Err() error
}

// Factory creates dispatchers for one node and changefeed. A factory is built per changefeed on
// each node by a dispatcher kind (server.DispatcherKind); it usually owns the changefeed's sink.
type Factory interface {
	// New creates the dispatcher of cfg, a span of table; idempotent per cfg.Id (rule 1). An
	// error is reported to the maintainer and New is retried later.
	New(cfg heartbeatpb.DispatcherConfig, table heartbeatpb.TableConfig) (Dispatcher, error)
	// Flush makes everything the dispatchers wrote durable; called before statuses are reported,
	// because a reported checkpoint must survive a crash of this node (rule 3). It must not
	// block for long: a failing sink returns its error and retries on a later call.
	Flush() error
}

// FormatID renders a dispatcher ID as "<hi>-<lo>", the form used in sink records and logs.
func FormatID(id heartbeatpb.DispatcherID) string {
	// Not fmt.Sprintf: IDs are formatted for every dispatcher a node creates (its sink
	// records and log fields), tens of thousands at once after a failover.
	b := make([]byte, 0, 41)
	b = strconv.AppendUint(b, id.Hi, 10)
	b = append(b, '-')
	return string(strconv.AppendUint(b, id.Lo, 10))
}

// ParseID is the inverse of FormatID.
func ParseID(s string) (heartbeatpb.DispatcherID, error) {
	hi, lo, ok := strings.Cut(s, "-")
	h, err1 := strconv.ParseUint(hi, 10, 64)
	l, err2 := strconv.ParseUint(lo, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return heartbeatpb.DispatcherID{}, fmt.Errorf("%w: dispatcher id %q: want <hi>-<lo>", ErrInvalid, s)
	}
	return heartbeatpb.DispatcherID{Hi: h, Lo: l}, nil
}

// ModeName is the sink record spelling of a mode: "default" or "redo".
func ModeName(m heartbeatpb.Mode) string {
	if m == heartbeatpb.ModeRedo {
		return "redo"
	}
	return "default"
}

// ParseMode is the inverse of ModeName.
func ParseMode(s string) (heartbeatpb.Mode, error) {
	switch s {
	case "default":
		return heartbeatpb.ModeDefault, nil
	case "redo":
		return heartbeatpb.ModeRedo, nil
	}
	return 0, fmt.Errorf("%w: mode %q: want default or redo", ErrInvalid, s)
}

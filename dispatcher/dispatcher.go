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
// from its single loop; implementations need not be safe for concurrent use.
type Dispatcher interface {
	ID() heartbeatpb.DispatcherID
	Span() heartbeatpb.TableSpan
	Mode() heartbeatpb.Mode
	// Poll does the work due up to now and reports the checkpoint and current load.
	Poll(now time.Time) (checkpointTs, load uint64)
	// Stop ends processing; nothing above finalTs is ever processed afterwards.
	Stop(now time.Time) (finalTs uint64, err error)
	// Close releases resources; after Stop or on shutdown.
	Close() error
}

// ErrorReporter is implemented by a dispatcher that can fail on its own, apart from the
// factory's sink: its source unreachable, its start ts compacted away. Err says why it cannot
// make progress now, nil when it can; the manager reports it in the dispatcher's status.
type ErrorReporter interface {
	Err() error
}

// Factory creates dispatchers for one node and changefeed.
type Factory interface {
	New(cfg heartbeatpb.DispatcherConfig, table heartbeatpb.TableConfig) (Dispatcher, error)
	// Flush makes everything the dispatchers wrote durable; called before statuses are reported,
	// because a reported checkpoint must survive a crash of this node.
	Flush() error
}

// FormatID renders a dispatcher ID as "<hi>-<lo>", the form used in sink records and logs.
func FormatID(id heartbeatpb.DispatcherID) string {
	return fmt.Sprintf("%d-%d", id.Hi, id.Lo)
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

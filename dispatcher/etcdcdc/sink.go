package etcdcdc

import (
	"context"
	"errors"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// ErrFenced is wrapped by a write refused because another dispatcher now owns (part of) the
// span: this dispatcher was deposed and must not write again.
var ErrFenced = errors.New("etcdcdc: span owned by a newer dispatcher")

// Event is one change of one source key.
type Event struct {
	Key, Value []byte
	Delete     bool
	Revision   int64 // the source mod revision
}

// Owner is the dispatcher a span writer writes for.
type Owner struct {
	Node, Changefeed string
	ID               heartbeatpb.DispatcherID
	Span             heartbeatpb.TableSpan
	// Start is the dispatcher's start revision: the mirror's fence records it when claimed.
	Start int64
}

// Sink is where the dispatchers of one changefeed on one node write. Safe for concurrent use.
type Sink interface {
	// Open returns the writer of one dispatcher. It does no I/O: the first Write does.
	Open(o Owner) SpanWriter
	// Err is the latest write failure that no later write has cleared, or nil.
	Err() error
	Close() error
}

// SpanWriter writes the events of one dispatcher. One goroutine uses it at a time.
type SpanWriter interface {
	// Write makes events (in revision order) durable in the sink, or fails. through is the
	// revision the dispatcher's checkpoint may move to once the write succeeded; a mirror
	// records it in the fence. An error wrapping ErrFenced is final.
	Write(ctx context.Context, events []Event, through int64) error
	// Settle resolves the outcome of a failed Write, so that none of it can land afterwards;
	// nil when nothing is unresolved.
	Settle(ctx context.Context) error
}

package dispatcher

import (
	"fmt"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// Preparer is implemented by a Factory whose dispatchers can be warmed up before they own their
// span: the destination of a make-before-break Move is prepared while the origin still works,
// and committed once the origin's final ts F is known, so the span pauses only for the commit
// instead of for the destination's whole start-up and catch-up. A factory that does not
// implement it gets today's break-before-make Move (the node refuses the prepare request and the
// maintainer falls back).
//
// The rules, on top of the Dispatcher contract:
//
//  6. Prepare writes nothing to any sink, claims nothing (no fence), and never will: until
//     Commit returns, the span belongs to another dispatcher (I1). It may open the source from
//     cfg.StartTs (the last checkpoint known of the origin, at or below F) and buffer what it
//     reads, or only position itself. Prepare is idempotent per cfg.Id like New (rule 1).
//  7. Commit(F) returns a working Dispatcher that behaves exactly as New of the same config
//     with StartTs = F: nothing at or below F is written, everything above it is (rules 2-5).
//     What was buffered at or below F is discarded; a buffer that overflowed, or one that does
//     not reach back to F+1, is dropped and the source is read again from F+1. Commit is called
//     at most once; the Prepared is spent afterwards.
//  8. Close abandons a prepared dispatcher that is never committed (the origin was lost, the
//     table removed, the Move timed out): it releases the source and, by rule 6, leaves nothing
//     in the sink.
type Preparer interface {
	Prepare(cfg heartbeatpb.DispatcherConfig, table heartbeatpb.TableConfig) (Prepared, error)
}

// Prepared is a dispatcher positioned on its span's source and not yet writing (rules 6-8).
type Prepared interface {
	ID() heartbeatpb.DispatcherID
	// Commit makes it the span's owner from final (rule 7).
	Commit(final uint64) (Dispatcher, error)
	// Close abandons it (rule 8).
	Close() error
}

// Warmer is implemented by a Prepared that needs a while before a commit would be quick: one
// that opened its source at a past revision and is still being sent the history (an etcd watch
// is "unsynced" until then, and gets nothing live). The node reports such a dispatcher Prepared
// only once Warm says so, because the Move stops the origin on that report and the span pauses
// until the destination writes. Warm must turn true within about a second whatever happens (a
// bound of its own, or a failure that makes it fall back): the Move's prepare phase times out
// and falls back to leaving the origin where it was. A Prepared without it is warm at once.
type Warmer interface {
	Warm() bool
}

// IsWarm reports whether p may be reported Prepared now (Warmer).
func IsWarm(p Prepared) bool {
	w, ok := p.(Warmer)
	return !ok || w.Warm()
}

// committedConfig is cfg as New would get it for a dispatcher starting from final.
func committedConfig(cfg heartbeatpb.DispatcherConfig, final uint64) heartbeatpb.DispatcherConfig {
	cfg.StartTs = final
	return cfg
}

// LazyPrepared is the trivial Prepared: it only remembers the config and creates the dispatcher
// from final at Commit through New. A factory whose dispatchers start fast and read a replayable
// source (the simulated one) prepares this way; it keeps every rule because it does nothing
// before Commit.
type LazyPrepared struct {
	Cfg   heartbeatpb.DispatcherConfig
	Table heartbeatpb.TableConfig
	New   func(heartbeatpb.DispatcherConfig, heartbeatpb.TableConfig) (Dispatcher, error)
	spent bool
}

// ID returns the dispatcher's ID.
func (p *LazyPrepared) ID() heartbeatpb.DispatcherID { return p.Cfg.Id }

// Commit creates the dispatcher from final.
func (p *LazyPrepared) Commit(final uint64) (Dispatcher, error) {
	if p.spent {
		return nil, fmt.Errorf("%w: dispatcher %s: committed twice", ErrInvalid, FormatID(p.Cfg.Id))
	}
	d, err := p.New(committedConfig(p.Cfg, final), p.Table)
	if err == nil {
		p.spent = true
	}
	return d, err
}

// Close has nothing to release.
func (p *LazyPrepared) Close() error { p.spent = true; return nil }

// Prepare positions a simulated dispatcher: nothing happens until Commit.
func (f *SimFactory) Prepare(cfg heartbeatpb.DispatcherConfig, table heartbeatpb.TableConfig) (Prepared, error) {
	return &LazyPrepared{Cfg: cfg, Table: table, New: f.New}, nil
}

package etcdcdc

import (
	"slices"
	"time"
)

// What the watch delivers is gathered into batches and written when the watch has nothing more
// ready, or maxWriteEvents are gathered: on a busy range one write carries what arrived while
// the last one was in flight.

// batch is what the watch hands the sink: events (whole revisions) and the revision the
// checkpoint may reach once they are in the sink.
type batch struct {
	events  []Event
	through int64
}

// above is b without its events at or below rev (b.through stays).
func (b batch) above(rev int64) batch {
	i := 0
	for i < len(b.events) && b.events[i].Revision <= rev {
		i++
	}
	b.events = b.events[i:]
	return b
}

// batchSink takes what a watch delivers (consume): push gathers a batch, flush writes what is
// gathered; either returns false once nothing more may be written.
type batchSink interface {
	push(b batch) bool
	flush() bool
}

// push gathers b for the next write, and writes when maxWriteEvents are gathered; false once
// the dispatcher is stopped or deposed. The watch calls flush whenever it has nothing more
// ready (batchSink).
func (d *Dispatcher) push(b batch) bool {
	if d.readCtx.Err() != nil {
		return false
	}
	if d.pending.through == 0 {
		d.pendingSince.Store(time.Now().UnixNano())
	}
	if len(d.pending.events) == 0 {
		d.pending.events = slices.Clip(b.events) // appending to it copies: b keeps its own
	} else {
		d.pending.events = append(d.pending.events, b.events...)
	}
	d.pending.through = b.through
	d.seen.Store(b.through)
	if len(d.pending.events) >= maxWriteEvents {
		return d.flush()
	}
	return true
}

// flush writes what is gathered and moves the durable checkpoint; false once the dispatcher
// is stopped or deposed (what is gathered is then never written).
func (d *Dispatcher) flush() bool {
	if d.readCtx.Err() != nil {
		return false
	}
	if d.pending.through == 0 {
		return true
	}
	events, through := d.pending.events, d.pending.through
	if !d.writeBatch(events, through) {
		return false
	}
	d.pending = batch{}
	d.events.Add(uint64(len(events)))
	d.checkpoint.Store(through)
	now := time.Now().UnixNano()
	d.lastLatency.Store(now - d.pendingSince.Swap(0)) // everything seen is durable now
	d.lastDurable.Store(now)
	d.f.cfg.DataPlane.ReportReplicated(len(events), eventBytes(events))
	return true
}

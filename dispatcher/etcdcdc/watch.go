package etcdcdc

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Progress notifications and why they are not taken at their word
//
// An idle span advances only through progress notifications, which the factory asks for with
// RequestProgress. etcd before the fix of its issue 15220 (Debian's 3.4.23 among them) answers
// a RequestProgress at once with the store's current revision, outside the watch's own event
// channel: while a watch started at a past revision is still catching up ("unsynced": etcd
// sends it the history of its range in (start, now] in later batches), or while events are
// queued behind the answer, a notification at R can arrive before events at or below R. Taken
// as the checkpoint, R would claim events durable that are not even read yet.
//
// So the dispatcher takes a notification only once its watch is caught up, and only once a
// later notification confirms it:
//
//   - The watch asks for its created response, whose header revision C is the source's
//     revision when etcd registered the watch: the watch owes every event of its range in
//     (start, C] before any newer one. It is caught up when it started at or above C (etcd
//     registers such a watch synced), when it delivers an event at or above C (events come in
//     revision order), or when reads of the range show nothing in (last, C] it has not
//     delivered: no key of the range modified in (last, C] is alive at C, and the range holds
//     as many keys at C as at last (then the keys at C are exactly those at last, unchanged,
//     so nothing was deleted either). Reads cannot see a key both created and deleted inside
//     (last, C]; that is the one case the check misses.
//   - Until then a notification never moves the checkpoint: it stays at the last event
//     revision delivered.
//   - Once caught up, a notification at R is a candidate; the next notification confirms it,
//     unless an event at or below R arrives between the two (the answer had overtaken queued
//     events: it is dropped). This narrows the overtaking race of a synced watch to events
//     still queued one progress interval later.
//
// A fixed etcd (3.4.24+, 3.5.8+) sends requested notifications through the watch's channel
// and only to synced watches, and every rule above then holds trivially. What the gate cannot
// mend on an unfixed etcd: clientv3 resumes a broken watch stream by itself from the last
// notification's revision + 1, so a premature notification followed by a broken stream loses
// the events it overtook before they reach this code. So the factory sends no progress request
// to an etcd that has not shown it is fixed, and idle spans advance by reads there instead
// (progressmode.go); the gate still screens the notifications etcd sends on its own.

// progressGate decides how far a watch's progress notifications may move the checkpoint. It
// is a pure state machine over what one watch delivered, in order.
type progressGate struct {
	last      int64 // the highest revision the watch has shown delivered (events, or confirmed progress)
	createdAt int64 // header revision of the created response; 0 until it arrives
	caughtUp  bool
	candidate int64 // a notification's revision awaiting confirmation; 0: none
	// lastRead: last at the previous read tick (progressmode.go): a watch that moved since is
	// not idle.
	lastRead int64
}

func newProgressGate(start int64) *progressGate { return &progressGate{last: start, lastRead: start} }

// created records the created response's header revision.
func (g *progressGate) created(rev int64) {
	g.createdAt = rev
	if g.last >= rev {
		g.caughtUp = true
	}
}

// events records a response whose last event is at rev and returns the revision the
// checkpoint may reach once its events are durable (never below an earlier one).
func (g *progressGate) events(rev int64) int64 {
	if g.candidate != 0 && rev <= g.candidate {
		g.candidate = 0 // the notification overtook these events
	}
	g.last = max(g.last, rev)
	if g.createdAt != 0 && rev >= g.createdAt {
		g.caughtUp = true
	}
	return g.last
}

// waiting reports the revisions (last, createdAt] a caught-up check must find quiet, while
// the watch is not caught up.
func (g *progressGate) waiting() (from, to int64, ok bool) {
	return g.last, g.createdAt, !g.caughtUp && g.createdAt != 0
}

// quietThrough records that reads found nothing undelivered in (last, rev].
func (g *progressGate) quietThrough(rev int64) {
	if g.createdAt != 0 && rev >= g.createdAt {
		g.caughtUp = true
	}
}

// proven records that a read found nothing undelivered in (last, rev] and returns the
// revision the checkpoint may move to, or 0.
func (g *progressGate) proven(rev int64) int64 {
	g.quietThrough(rev)
	if rev <= g.last {
		return 0
	}
	g.last, g.lastRead = rev, rev
	if g.candidate <= rev {
		g.candidate = 0 // confirming it would move nothing
	}
	return rev
}

// progress records a notification at rev and returns the revision the checkpoint may move
// to, or 0.
func (g *progressGate) progress(rev int64) int64 {
	if !g.caughtUp {
		return 0
	}
	confirmed := g.candidate
	g.candidate = 0
	if confirmed > g.last {
		g.last = confirmed
	} else {
		confirmed = 0
	}
	if rev > g.last {
		g.candidate = rev
	}
	return confirmed
}

// rangeOpts select the span's source range (after its start key).
func (d *Dispatcher) rangeOpts() []clientv3.OpOption { return rangeOptions(d.rng) }

func rangeOptions(rng keyRange) []clientv3.OpOption {
	if rng.end == nil {
		return []clientv3.OpOption{clientv3.WithFromKey()}
	}
	return []clientv3.OpOption{clientv3.WithRange(string(rng.end))}
}

// watchOptions watch rng strictly above rev, with progress notifications.
func watchOptions(rng keyRange, rev int64) []clientv3.OpOption {
	return append([]clientv3.OpOption{clientv3.WithRev(rev + 1), clientv3.WithProgressNotify()}, rangeOptions(rng)...)
}

// eventBatch is one watch response's events (at least one) as a batch through the last one.
func eventBatch(evs []*clientv3.Event) batch {
	b := batch{events: make([]Event, 0, len(evs))}
	for _, ev := range evs {
		b.events = append(b.events, Event{Key: ev.Kv.Key, Value: ev.Kv.Value,
			Delete: ev.Type == clientv3.EventTypeDelete, Revision: ev.Kv.ModRevision})
	}
	b.through = b.events[len(b.events)-1].Revision
	return b
}

// watch runs one watch from rev+1 into out and returns the last revision pushed and why it
// ended.
func (d *Dispatcher) watch(rev int64, out batchSink) (int64, error) {
	opts := append(watchOptions(d.rng, rev), clientv3.WithCreatedNotify())
	ctx, cancel := context.WithCancel(d.readCtx)
	defer cancel()
	return d.consume(ctx, d.f.streams.watch(ctx, string(d.rng.start), opts...), newProgressGate(rev), rev, out)
}

// consume pushes to out what the watch wch (of the span's range, with created notification)
// delivers, as gate lets it, and flushes out whenever wch has nothing more ready, until wch
// ends; rev is the last revision pushed before, and consume returns the last revision pushed
// (the caller flushes it) and why it ended. A watch of its own starts at rev+1; one handed
// over by a prepared dispatcher (prepare.go) started lower, and what it delivers at or below
// that first rev (floor) is dropped: it is in the preload or the origin's.
//
// Only below the floor: an event at or below a later rev is not a duplicate. On an etcd without
// the fix for etcd-io/etcd#15220 a confirmed progress notification can still overtake queued
// events (see the top of this file); such an event is late, and is written (its batch's
// checkpoint stays at the gate's last), never dropped.
func (d *Dispatcher) consume(ctx context.Context, wch clientv3.WatchChan, gate *progressGate, rev int64, out batchSink) (int64, error) {
	floor := rev
	for {
		if !ready(wch) && !out.flush() {
			return rev, nil
		}
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case resp, ok = <-wch:
		case <-d.f.mode.ticks():
			// Only ever closed while idle spans advance by reads (progressmode.go).
			if r := readProgress(ctx, d.f.cli, d.rng, d.log, gate); r > rev && out.push(batch{through: r}) {
				rev = r
			}
			continue
		}
		if !ok {
			return rev, nil
		}
		if resp.CompactRevision != 0 || errors.Is(resp.Err(), rpctypes.ErrCompacted) {
			return rev, fmt.Errorf("%w: source %v compacted through revision %d, above this span's checkpoint %d: "+
				"its events in between are gone. Nothing was skipped; to go on, remove the changefeed and create it again "+
				"(its mirror is then rebuilt from a newer revision), and size the source's auto-compaction retention above "+
				"the changefeed's lag", rpctypes.ErrCompacted, d.f.cli.Endpoints(), resp.CompactRevision, rev)
		}
		if err := resp.Err(); err != nil {
			return rev, fmt.Errorf("etcdcdc: watch of source %v: %w", d.f.cli.Endpoints(), err)
		}
		d.setErr(&d.watchErr, nil)
		switch {
		case resp.Created:
			gate.created(resp.Header.Revision)
			continue
		case resp.IsProgressNotify():
			if from, to, ok := gate.waiting(); ok {
				if _, quiet := quietRange(ctx, d.f.cli, d.rng, d.log, from, to); quiet {
					gate.quietThrough(to)
				}
			}
			if r := gate.progress(resp.Header.Revision); r > rev && out.push(batch{through: r}) {
				rev = r
			}
			continue
		case len(resp.Events) == 0:
			continue
		}
		b := eventBatch(resp.Events)
		b.through = gate.events(b.through)
		if b = b.above(floor); len(b.events) == 0 && b.through <= rev {
			continue
		}
		d.skipFirstEvent(&b)
		if !out.push(b) {
			return rev, nil
		}
		rev = b.through
	}
}

// ready reports whether wch has a response ready. The client hands a watch's responses over
// one at a time through a channel of one from a goroutine of its own that buffers the rest;
// that goroutine, woken by the last receive, runs when this one yields. Yielding once before
// calling the channel empty lets what the client buffered during the last write join the next
// one instead of going one response a write.
func ready(wch clientv3.WatchChan) bool {
	if len(wch) > 0 {
		return true
	}
	runtime.Gosched()
	return len(wch) > 0
}

// quietRange reports whether reads of rng find no change in (from, to], and returns to: no key
// modified in it is alive at to, and the range holds as many keys at to as at from. to <= 0
// means now, and the revision returned is then the one read at. One transaction, so that all
// three reads see one store. A failed read is not quiet.
func quietRange(ctx context.Context, cli *clientv3.Client, rng keyRange, log *zap.Logger, from, to int64) (int64, bool) {
	get := func(opts ...clientv3.OpOption) clientv3.Op {
		return clientv3.OpGet(string(rng.start), append(rangeOptions(rng), opts...)...)
	}
	var at []clientv3.OpOption
	if to > 0 {
		at = []clientv3.OpOption{clientv3.WithRev(to)}
	}
	ops := []clientv3.Op{
		// Mod-revision filters prune the keys returned, not a count: ask for the keys.
		get(append(at, clientv3.WithMinModRev(from+1), clientv3.WithKeysOnly())...),
		get(append(at, clientv3.WithCountOnly())...),
	}
	if from > 0 {
		ops = append(ops, get(clientv3.WithRev(from), clientv3.WithCountOnly()))
	}
	resp, err := cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		log.Debug("quiet check of the span's range failed", zap.Int64("from", from), zap.Int64("to", to), zap.Error(err))
		return 0, false
	}
	rs := resp.Responses
	if len(rs) != len(ops) || len(rs[0].GetResponseRange().GetKvs()) > 0 {
		return 0, false
	}
	var before int64
	if from > 0 {
		before = rs[2].GetResponseRange().GetCount()
	}
	if rs[1].GetResponseRange().GetCount() != before {
		return 0, false
	}
	if to <= 0 {
		to = resp.Header.Revision
	}
	return to, true
}

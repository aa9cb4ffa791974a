package maintainer

import (
	"errors"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/bootstrap"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

// opRunner starts operators on spans of the DB and applies their results when they finish.
// Every operator, whoever decided it (a scheduler, an admin request, a table change, the
// bootstrap), starts through startOp: take the next IDs, hand it to the controller, classify a
// refusal, and only on success commit the IDs, hold its spans and queue its first requests.
type opRunner struct {
	cfg   *Config
	log   *zap.Logger
	db    *spanDB
	ctl   *operator.Controller
	out   *outbox
	loads *loadTracker

	held map[heartbeatpb.OperatorID][]spanID // spans each DB-linked operator holds
	// restored: operators resumed by the bootstrap restore; schedulers wait until all are done.
	restored map[heartbeatpb.OperatorID]bool

	nextDispatcher, nextOperator uint64
}

// opID and dispatcherID return the IDs the next operator would take; they are committed only
// when the controller accepts it, so refused attempts leave no holes.
func (r *opRunner) opID() heartbeatpb.OperatorID {
	return heartbeatpb.OperatorID{Epoch: r.cfg.Epoch, Seq: r.nextOperator + 1}
}

func (r *opRunner) dispatcherID(i int) heartbeatpb.DispatcherID {
	return heartbeatpb.DispatcherID{Hi: r.cfg.Epoch, Lo: r.nextDispatcher + uint64(i) + 1}
}

// startOp hands op to the controller and, when it accepts, commits the operator ID and
// newDispatchers dispatcher IDs, lets begin take the spans it holds (nil for a stray removal,
// which holds none of the DB's) and queues its first requests. A refusal for busy spans or
// limits is returned and changes nothing; the caller's next round may try again.
func (r *opRunner) startOp(op operator.Operator, newDispatchers int, begin func(heartbeatpb.OperatorID) []spanID, now time.Time) error {
	out, err := r.ctl.Add(op, now)
	if err != nil {
		if !errors.Is(err, operator.ErrSpanBusy) && !errors.Is(err, operator.ErrLimit) {
			panic("maintainer: unexpected controller error: " + err.Error())
		}
		return err
	}
	id := op.ID()
	r.nextOperator++
	r.nextDispatcher += uint64(newDispatchers)
	if begin != nil {
		r.held[id] = begin(id)
	}
	r.out.emit(out)
	return nil
}

// deferred logs a start the controller refused; the next round tries again.
func (r *opRunner) deferred(op operator.Operator, s heartbeatpb.TableSpan, err error) bool {
	if err != nil {
		r.log.Debug("operator deferred", zap.Stringer("kind", op.Type()), zap.String("span", span.String(s)), zap.Error(err))
		return false
	}
	return true
}

// add creates the Add of one placement; false when the controller refused it.
func (r *opRunner) add(p placement, now time.Time) bool {
	rec, s := r.db.get(p.span), r.db.spanOf(p.span)
	did := r.dispatcherID(0)
	op, err := operator.NewAdd(r.opID(), s, rec.mode, p.node, did, r.db.checkpoint(p.span), now)
	if err != nil {
		panic("maintainer: span DB holds an invalid span: " + err.Error())
	}
	return r.deferred(op, s, r.startOp(op, 1, func(id heartbeatpb.OperatorID) []spanID {
		r.db.beginAdd(p.span, id, p.node, did)
		return []spanID{p.span}
	}, now))
}

// move creates the Move of one free replicating span to dest; false when that is not possible.
func (r *opRunner) move(sid spanID, dest string, now time.Time) bool {
	rec, s, from := r.db.get(sid), r.db.spanOf(sid), r.db.nodeOf(sid)
	if !rec.free() || from == dest {
		return false
	}
	op, err := operator.NewMove(r.opID(), s, rec.mode, from, rec.dispatcher, dest, r.dispatcherID(0), r.db.checkpoint(sid), now)
	if err != nil {
		panic("maintainer: span DB holds an invalid move: " + err.Error())
	}
	if r.cfg.MakeBeforeBreak || r.cfg.ChangefeedConfig.MakeBeforeBreak {
		op.WithPrepare() // nodes that cannot prepare refuse, and the Move falls back
	}
	return r.deferred(op, s, r.startOp(op, 1, r.holdOne(sid), now))
}

// remove creates the Remove of one free replicating span's dispatcher; false when refused.
func (r *opRunner) remove(sid spanID, now time.Time) bool {
	rec, s := r.db.get(sid), r.db.spanOf(sid)
	op, err := operator.NewRemove(r.opID(), s, rec.mode, r.db.nodeOf(sid), rec.dispatcher, r.db.checkpoint(sid), now)
	if err != nil {
		panic("maintainer: span DB holds an invalid remove: " + err.Error())
	}
	return r.deferred(op, s, r.startOp(op, 0, r.holdOne(sid), now))
}

// split creates the Split of free replicating span sid into children on nodes; false when the
// span is not free or the controller refused it.
func (r *opRunner) split(sid spanID, children []heartbeatpb.TableSpan, nodes []string, now time.Time) bool {
	rec := r.db.get(sid)
	if !rec.free() {
		return false
	}
	d := heartbeatpb.OperatorDescriptor{
		Id: r.opID(), Kind: heartbeatpb.OpSplit, Mode: rec.mode, CreatedMs: now.UnixMilli(),
		Sources: []heartbeatpb.SpanPlacement{{Span: r.db.spanOf(sid), DispatcherId: rec.dispatcher, NodeId: r.db.nodeOf(sid)}},
	}
	for i, c := range children {
		d.Targets = append(d.Targets, heartbeatpb.SpanPlacement{Span: c, NodeId: nodes[i], DispatcherId: r.dispatcherID(i)})
	}
	op, err := operator.NewSplit(d, r.db.checkpoint(sid), now)
	if err != nil {
		panic("maintainer: span DB holds an invalid split: " + err.Error())
	}
	hold := r.holdOne(sid)
	return r.deferred(op, r.db.spanOf(sid), r.startOp(op, len(children), func(id heartbeatpb.OperatorID) []spanID {
		r.loads.forget(sid) // the pieces' reports start over
		return hold(id)
	}, now))
}

// merge creates the Merge of run (adjacent, key order, all free on node); false when refused.
func (r *opRunner) merge(run []spanID, node string, now time.Time) bool {
	first := r.db.get(run[0])
	d := heartbeatpb.OperatorDescriptor{Id: r.opID(), Kind: heartbeatpb.OpMerge, Mode: first.mode, CreatedMs: now.UnixMilli()}
	spans := make([]heartbeatpb.TableSpan, len(run))
	cps := make([]uint64, len(run))
	for i, sid := range run {
		rec := r.db.get(sid)
		spans[i], cps[i] = r.db.spanOf(sid), r.db.checkpoint(sid)
		d.Sources = append(d.Sources, heartbeatpb.SpanPlacement{Span: r.db.spanOf(sid), DispatcherId: rec.dispatcher, NodeId: node})
	}
	merged, err := span.Merge(spans)
	if err != nil {
		panic("maintainer: merge run is not adjacent: " + err.Error())
	}
	d.Targets = []heartbeatpb.SpanPlacement{{Span: merged, NodeId: node, DispatcherId: r.dispatcherID(0)}}
	op, err := operator.NewMerge(d, cps, now)
	if err != nil {
		panic("maintainer: span DB holds an invalid merge: " + err.Error())
	}
	ok := r.deferred(op, merged, r.startOp(op, 1, func(id heartbeatpb.OperatorID) []spanID {
		for _, sid := range run {
			r.db.beginOp(sid, id)
			r.loads.forget(sid)
		}
		return slices.Clone(run)
	}, now))
	if ok {
		r.log.Info("merging cold spans", zap.String("span", span.String(merged)), zap.Int("sources", len(run)),
			zap.String("node", node))
	}
	return ok
}

// holdOne returns the begin step of an operator changing one replicating span.
func (r *opRunner) holdOne(sid spanID) func(heartbeatpb.OperatorID) []spanID {
	return func(id heartbeatpb.OperatorID) []spanID {
		r.db.beginOp(sid, id)
		return []spanID{sid}
	}
}

// removeStray starts a Remove of a working dispatcher the span DB does not know. Failure (span
// busy, limits) is fine: the dispatcher shows up in the next heartbeat and is tried again.
func (r *opRunner) removeStray(node string, s heartbeatpb.TableSpan, mode heartbeatpb.Mode,
	d heartbeatpb.DispatcherID, checkpoint uint64, now time.Time) {
	op, err := operator.NewRemove(r.opID(), s, mode, node, d, checkpoint, now)
	if err == nil {
		if err = r.startOp(op, 0, nil, now); err == nil {
			return
		}
	}
	r.log.Info("cannot remove stray dispatcher yet", zap.String("node", node),
		zap.String("span", span.String(s)), zap.Error(err))
}

// resume registers a restored operator and the spans it holds. The plan gives every operator
// its own spans and dispatchers, so the controller refusing one is a broken invariant of
// Restore; the spans then fall back to absent (their dispatchers, if any, are strangers that the
// next heartbeat gets removed) rather than being lost.
func (r *opRunner) resume(res bootstrap.Resumed, now time.Time) {
	id := res.Op.ID()
	out, err := r.ctl.AddRestored(res.Op, now)
	if err != nil {
		r.log.Error("bootstrap: restored operator refused; its spans become absent", zap.Stringer("operator", &id),
			zap.Error(err))
		for _, h := range res.Held {
			r.db.insertAbsent(h.Span, h.Mode, h.Checkpoint)
		}
		return
	}
	sids := make([]spanID, 0, len(res.Held))
	for _, h := range res.Held {
		var sid spanID
		if h.Bound {
			sid = r.db.insertReplicating(h.Span, h.Mode, h.Node, h.Dispatcher, h.Checkpoint)
			r.db.beginOp(sid, id)
		} else {
			sid = r.db.insertAbsent(h.Span, h.Mode, h.Checkpoint)
			r.db.beginAdd(sid, id, h.Node, h.Dispatcher)
		}
		sids = append(sids, sid)
	}
	r.held[id] = sids
	mapSet(&r.restored, id, true)
	r.out.emit(out)
}

// restoring reports whether a restored operator is still running: the schedulers wait for all
// of them, so the first decisions of this term are made on the schedule the last term left.
func (r *opRunner) restoring() bool {
	for id := range r.restored {
		if _, running := r.ctl.Get(id); running {
			return true
		}
		delete(r.restored, id)
	}
	return false
}

// retire takes a span out of the schedule for good.
func (r *opRunner) retire(sid spanID) {
	r.db.retire(sid)
	r.loads.forget(sid)
}

// applyFinished applies the results of finished operators to the span DB and queues their
// acknowledgement to every node they involved.
func (r *opRunner) applyFinished() {
	for _, f := range r.ctl.TakeFinished() {
		id := f.Op.ID()
		for _, n := range operator.Nodes(f.Op) {
			r.out.ack(n, id)
		}
		// A success is the common case, a million of them in a cold start of a million spans
		// (the counters in Status keep the totals); only the others are news at info level.
		logf := r.log.Info
		if f.Result.Outcome == operator.OutcomeSucceeded {
			logf = r.log.Debug
		}
		logf("operator finished", zap.Stringer("operator", &id), zap.Stringer("kind", f.Op.Type()),
			zap.Stringer("outcome", f.Result.Outcome), zap.Bool("made_before_break", f.Result.MadeBeforeBreak))
		sids, linked := r.held[id]
		if !linked {
			continue // a stray removal: the span DB never depended on it
		}
		delete(r.held, id)
		r.applyResult(id, sids, f.Result)
	}
}

// applyResult applies one finished operator's result to the spans it held (sids). Retired
// spans (a Split's parent, a Merge's sources) leave the DB first; Bind and Absent spans the
// operator did not hold are then the ones replacing them, inserted new. Held spans the result
// does not mention go back to what they were.
func (r *opRunner) applyResult(id heartbeatpb.OperatorID, sids []spanID, res operator.Result) {
	touched := make(map[spanID]bool, len(sids))
	for _, rt := range res.Retire {
		if sid, ok := findSpan(r.db, sids, rt.Span, rt.Mode); ok {
			r.retire(sid)
			touched[sid] = true
		}
	}
	replacing := len(res.Retire) > 0 && len(touched) > 0
	for _, b := range res.Bind {
		if sid, ok := findSpan(r.db, sids, b.Span, b.Mode); ok {
			r.db.bind(sid, b.Node, b.Dispatcher, b.Checkpoint)
			touched[sid] = true
		} else if replacing {
			r.db.insertReplicating(b.Span, b.Mode, b.Node, b.Dispatcher, b.Checkpoint)
		}
	}
	for _, a := range res.Absent {
		if sid, ok := findSpan(r.db, sids, a.Span, a.Mode); ok {
			r.db.markAbsent(sid, a.Checkpoint)
			touched[sid] = true
		} else if replacing {
			r.db.insertAbsent(a.Span, a.Mode, a.Checkpoint)
		}
	}
	for _, sid := range sids {
		if !touched[sid] && r.db.get(sid).op == id {
			r.db.release(sid)
		}
	}
}

// mapSet sets (*mp)[k] = v, creating the map on first use.
func mapSet[K comparable, V any](mp *map[K]V, k K, v V) {
	if *mp == nil {
		*mp = make(map[K]V)
	}
	(*mp)[k] = v
}

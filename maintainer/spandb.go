package maintainer

import (
	"fmt"
	"math"
	"slices"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// spanID is a span's compact index in the span DB; records are never moved, so it is stable.
type spanID uint32

var noOp heartbeatpb.OperatorID

// spanRecord is one span in one mode. Its checkpoint lives in spanDB.cps. It holds no pointer
// (keys and node name are numbers into the DB: spanOf, nodeOf), so the collector does not scan
// a million records on every cycle.
type spanRecord struct {
	table int64
	keys  keyRef // the span's keys in spanDB.keys
	// nodePos is the record's index in byNode[node] while it is attached to a node.
	nodePos    uint32
	dispatcher heartbeatpb.DispatcherID
	op         heartbeatpb.OperatorID // the operator holding it (adding, changing), or noOp
	node       uint32                 // the node's number in spanDB.nodes; 0: none
	mode       heartbeatpb.Mode
	life       lifecycle
}

// free: replicating and held by no operator, so a scheduler may start one on it.
func (r *spanRecord) free() bool { return r.life == lifeReplicating && r.op == noOp }

func (r *spanRecord) retired() bool { return r.life == lifeRetired }

// spanDB holds every span of every table in every mode. Records live in one slice indexed by
// spanID; the indexes hold compact IDs only, so a million spans cost a million small records.
// The DB only keeps records consistent; what to do with them is the callers' business.
type spanDB struct {
	recs []spanRecord
	// cps holds each span's checkpoint, by state: the ts it resumes from (absent), the start or
	// last known ts (scheduling), the last reported ts (replicating). A dense slice apart from
	// the records keeps the per-tick minimum a fast linear scan.
	cps          []uint64
	byDispatcher idIndex
	// byNode lists the spans attached to each node, unordered, each record knowing its index
	// (nodePos): attaching is an append and detaching a swap with the last, so a restore of a
	// million spans makes no hash insert per span here (a set per node did, a fifth of its time)
	// and a pass over a node's spans walks a slice.
	byNode  map[string][]spanID
	nodes   nodeNames // the numbers records name their node by
	keys    keyArena  // every record's keys
	byTable tableSpans
	absent  absentQueue
	counts  [numStates]int
	// tombs: retired records not emptied yet (reclaim).
	tombs []spanID
}

func newSpanDB(capacity int) *spanDB {
	db := &spanDB{}
	db.reset(capacity)
	return db
}

// reset empties the DB, sized for capacity spans.
func (db *spanDB) reset(capacity int) {
	*db = spanDB{
		recs:         make([]spanRecord, 0, capacity),
		cps:          make([]uint64, 0, capacity),
		byDispatcher: newIDIndex(capacity),
		byNode:       make(map[string][]spanID),
		// Room for a table key pair a span (9 B each), what a changefeed of whole tables needs.
		keys: keyArena{buf: make([]byte, 0, capacity*2*9)},
	}
}

func (db *spanDB) get(id spanID) *spanRecord { return &db.recs[id] }

// spanOf returns the span's key range; its keys are views of the DB's arena, never to be
// written.
func (db *spanDB) spanOf(id spanID) heartbeatpb.TableSpan {
	r := &db.recs[id]
	return db.keys.span(r.table, r.keys)
}

// nodeOf returns the node the span is attached to, "" for none.
func (db *spanDB) nodeOf(id spanID) string { return db.nodes.name(db.recs[id].node) }

// insertAbsent adds a span that nobody serves yet, resuming from checkpoint.
func (db *spanDB) insertAbsent(s heartbeatpb.TableSpan, mode heartbeatpb.Mode, checkpoint uint64) spanID {
	id := db.insert(s, mode, checkpoint)
	db.absent.push(id)
	return id
}

// insertReplicating adds a span served by dispatcher on node.
func (db *spanDB) insertReplicating(s heartbeatpb.TableSpan, mode heartbeatpb.Mode, node string,
	d heartbeatpb.DispatcherID, checkpoint uint64) spanID {
	id := db.insert(s, mode, checkpoint)
	db.setLife(id, lifeReplicating)
	db.attach(id, node, d)
	return id
}

func (db *spanDB) insert(s heartbeatpb.TableSpan, mode heartbeatpb.Mode, checkpoint uint64) spanID {
	if len(db.recs) >= math.MaxUint32 {
		panic("maintainer: span DB full")
	}
	id := db.appendRecord(s, mode, checkpoint)
	db.byTable.add(s.TableId, id)
	return id
}

// setLife moves the record to l, keeping the counts.
func (db *spanDB) setLife(id spanID, l lifecycle) {
	r := &db.recs[id]
	if s, ok := r.life.state(); ok {
		db.counts[s]--
	}
	if s, ok := l.state(); ok {
		db.counts[s]++
	}
	r.life = l
}

// attach indexes the record on node (and by dispatcher when its lifecycle says it is bound).
func (db *spanDB) attach(id spanID, node string, d heartbeatpb.DispatcherID) {
	r := &db.recs[id]
	r.node, r.dispatcher = db.nodes.ref(node), d
	r.nodePos = uint32(len(db.byNode[node]))
	db.byNode[node] = append(db.byNode[node], id)
	if r.life.bound() {
		db.byDispatcher.put(d, id)
	}
}

// boundTo finds the span the status's dispatcher is bound to. known: it is bound, on this node,
// span and mode; mismatch: the ID is bound, but to another node, span or mode.
func (db *spanDB) boundTo(node string, st *heartbeatpb.DispatcherStatus) (sid spanID, known, mismatch bool) {
	sid, known = db.byDispatcher.get(st.Id)
	if known {
		r := db.get(sid)
		mismatch = db.nodeOf(sid) != node || r.mode != st.Mode || !span.Equal(db.spanOf(sid), st.Span)
		known = !mismatch
	}
	return sid, known, mismatch
}

// unlist takes the record out of its node's list: the last one takes its place.
func (db *spanDB) unlist(id spanID, r *spanRecord) {
	node := db.nodes.name(r.node)
	ids := db.byNode[node]
	pos := int(r.nodePos)
	if pos >= len(ids) || ids[pos] != id {
		// Not where the record says: the index is kept by attach and unlist alone, so this
		// is a bug; find it the slow way rather than corrupt another record's entry.
		if pos = slices.Index(ids, id); pos < 0 {
			return
		}
	}
	last := len(ids) - 1
	ids[pos] = ids[last]
	db.recs[ids[pos]].nodePos = uint32(pos)
	ids = ids[:last]
	switch {
	case len(ids) == 0:
		delete(db.byNode, node)
		db.nodes.drop(node) // r was its last record; detach clears r.node
	case cap(ids) > 1024 && len(ids) < cap(ids)/4:
		db.byNode[node] = slices.Clone(ids) // a drained node gives its memory back
	default:
		db.byNode[node] = ids
	}
}

// detach drops the record from the node and dispatcher indexes; call it before the lifecycle
// leaves a bound state.
func (db *spanDB) detach(id spanID) {
	r := &db.recs[id]
	if r.node != 0 {
		db.unlist(id, r)
	}
	if got, ok := db.byDispatcher.get(r.dispatcher); r.life.bound() && ok && got == id {
		db.byDispatcher.del(r.dispatcher)
	}
	r.node, r.dispatcher = 0, heartbeatpb.DispatcherID{}
}

// beginAdd hands an absent span to an Add operator placing it on node as dispatcher d. The node
// counts it from now on, so the next scheduler round sees the load.
func (db *spanDB) beginAdd(id spanID, op heartbeatpb.OperatorID, node string, d heartbeatpb.DispatcherID) {
	r := &db.recs[id]
	if r.life != lifeAbsent || r.op != noOp {
		panic(fmt.Sprintf("maintainer: add of span %d in state %v", id, r.life))
	}
	db.setLife(id, lifeAdding)
	r.op = op
	db.attach(id, node, d)
}

// beginOp hands a replicating span to an operator that changes its dispatcher (Remove, Move,
// Split, Merge).
func (db *spanDB) beginOp(id spanID, op heartbeatpb.OperatorID) {
	r := &db.recs[id]
	if !r.free() {
		panic(fmt.Sprintf("maintainer: operator on span %d in state %v", id, r.life))
	}
	db.setLife(id, lifeChanging)
	r.op = op
}

// bind makes dispatcher d on node the span's server.
func (db *spanDB) bind(id spanID, node string, d heartbeatpb.DispatcherID, checkpoint uint64) {
	db.detach(id)
	r := &db.recs[id]
	r.op = noOp
	db.cps[id] = max(db.cps[id], checkpoint)
	db.setLife(id, lifeReplicating)
	db.attach(id, node, d)
}

// markAbsent leaves the span without a dispatcher, resuming from checkpoint. The checkpoint is
// taken as given: it may be below the last one seen when that was never confirmed final.
func (db *spanDB) markAbsent(id spanID, checkpoint uint64) {
	db.detach(id)
	r := &db.recs[id]
	r.op = noOp
	db.cps[id] = checkpoint
	db.setLife(id, lifeAbsent)
	db.absent.push(id)
}

// release ends an operator that left the span as it found it.
func (db *spanDB) release(id spanID) {
	r := &db.recs[id]
	r.op = noOp
	if r.life == lifeChanging {
		db.setLife(id, lifeReplicating)
		return
	}
	db.markAbsent(id, db.cps[id])
}

// retire turns the record into a tombstone: out of every index and count, never absent (so the
// absent queue skips it), never the minimum checkpoint. IDs stay stable for whoever holds one;
// reclaim later empties the record.
func (db *spanDB) retire(id spanID) {
	r := &db.recs[id]
	if r.retired() {
		return
	}
	db.detach(id)
	r.op = noOp
	db.setLife(id, lifeRetired)
	db.cps[id] = math.MaxUint64
	db.tombs = append(db.tombs, id)
	t := r.table
	ids := db.byTable.get(t)
	if i := slices.Index(ids, id); i >= 0 {
		ids = slices.Delete(ids, i, i+1)
	}
	db.byTable.set(t, ids)
}

// advance raises a replicating span's checkpoint; checkpoints only move forward.
func (db *spanDB) advance(id spanID, ts uint64) {
	if ts > db.cps[id] {
		db.cps[id] = ts
	}
}

// popAbsent returns up to n spans that are absent and free, oldest first.
func (db *spanDB) popAbsent(n int) []spanID {
	return db.absent.pop(n, func(id spanID) bool { return db.recs[id].life == lifeAbsent })
}

// requeue puts an absent span back in the queue (a placement that did not start).
func (db *spanDB) requeue(id spanID) { db.absent.push(id) }

// onNode returns the spans bound to or being added on node, in ID order.
func (db *spanDB) onNode(node string) []spanID {
	out := slices.Clone(db.byNode[node])
	slices.Sort(out)
	return out
}

// checkpoint returns the span's checkpoint.
func (db *spanDB) checkpoint(id spanID) uint64 { return db.cps[id] }

// nodeLoad returns how many spans node serves or is about to serve.
func (db *spanDB) nodeLoad(node string) int { return len(db.byNode[node]) }

// minCheckpoint returns the lowest checkpoint over all spans, or false when there are none.
func (db *spanDB) minCheckpoint() (uint64, bool) {
	if len(db.recs) == 0 {
		return 0, false
	}
	lo := uint64(math.MaxUint64)
	for _, c := range db.cps {
		if c < lo {
			lo = c
		}
	}
	return lo, true
}

// reclaim empties the tombstones nothing refers to any more: their keys are released (and the
// arena compacted once they are most of it), so a changefeed that splits and merges for months keeps a small fixed slot per
// retired span, not its keys. A tombstone stays whole while held says something still reads it
// (an admin request answering from it) or while the absent queue has an entry for it. The slot
// itself is not reused: span IDs double as age order (the schedulers take the oldest spans
// first, listings page by ID), and reusing them measurably changes which spans balance picks
// (TestSplitMergeBalanceLive then ends with the two modes of two key ranges apart). It returns
// the emptied IDs.
func (db *spanDB) reclaim(held func(spanID) bool) []spanID {
	if len(db.tombs) == 0 {
		return nil
	}
	keep := db.tombs[:0]
	var freed []spanID
	for _, id := range db.tombs {
		if held(id) || db.absent.in[id] {
			keep = append(keep, id)
			continue
		}
		db.keys.release(db.recs[id].keys)
		db.recs[id] = spanRecord{life: lifeRetired}
		freed = append(freed, id)
	}
	db.tombs = keep
	if db.keys.wasteful() {
		db.keys.compact(func(move func(*keyRef)) {
			for i := range db.recs {
				move(&db.recs[i].keys)
			}
		})
	}
	return freed
}

package maintainer

import (
	"fmt"
	"math"
	"sort"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// spanID is a span's compact index in the span DB; records are never moved, so it is stable.
type spanID uint32

// spanState is where a span is in its life.
type spanState uint8

const (
	// stateAbsent: no dispatcher serves the span; it waits for the scheduler.
	stateAbsent spanState = iota
	// stateScheduling: an operator holds the span.
	stateScheduling
	// stateReplicating: one known dispatcher on one node serves it.
	stateReplicating
	numStates
)

var stateNames = [numStates]string{"absent", "scheduling", "replicating"}

func (s spanState) String() string { return stateNames[s] }

var noOp heartbeatpb.OperatorID

// spanRecord is one span in one mode. Its checkpoint lives in spanDB.cps.
type spanRecord struct {
	span       heartbeatpb.TableSpan
	mode       heartbeatpb.Mode
	state      spanState
	queued     bool // in the absent queue
	node       string
	dispatcher heartbeatpb.DispatcherID
	bound      bool // dispatcher is confirmed and indexed in byDispatcher
	op         heartbeatpb.OperatorID
	// retired: the span left the schedule (split, merged or its table removed); the record
	// stays as a tombstone so spanIDs remain stable, and no index or count holds it (tables.go).
	retired bool
}

// spanDB holds every span of every table in every mode. Records live in one slice indexed by
// spanID; the indexes hold compact IDs only, so a million spans cost a million small records.
type spanDB struct {
	recs []spanRecord
	// cps holds each span's checkpoint, by state: the ts it resumes from (absent), the start or
	// last known ts (scheduling), the last reported ts (replicating). A dense slice apart from
	// the records keeps the per-tick minimum a fast linear scan.
	cps          []uint64
	byDispatcher map[heartbeatpb.DispatcherID]spanID
	byNode       map[string]map[spanID]struct{}
	byTable      map[int64][]spanID
	// absent is a FIFO of spans to place; entries whose span left the absent state meanwhile
	// are skipped when popped.
	absent []spanID
	head   int
	counts [numStates]int
}

func newSpanDB(capacity int) *spanDB {
	return &spanDB{
		recs:         make([]spanRecord, 0, capacity),
		cps:          make([]uint64, 0, capacity),
		byDispatcher: make(map[heartbeatpb.DispatcherID]spanID, capacity),
		byNode:       make(map[string]map[spanID]struct{}),
		byTable:      make(map[int64][]spanID),
	}
}

func (db *spanDB) len() int { return len(db.recs) }

func (db *spanDB) get(id spanID) *spanRecord { return &db.recs[id] }

// insertAbsent adds a span that nobody serves yet, resuming from checkpoint.
func (db *spanDB) insertAbsent(s heartbeatpb.TableSpan, mode heartbeatpb.Mode, checkpoint uint64) spanID {
	id := db.insert(s, mode, checkpoint)
	db.enqueue(id)
	return id
}

// insertReplicating adds a span served by dispatcher on node.
func (db *spanDB) insertReplicating(s heartbeatpb.TableSpan, mode heartbeatpb.Mode, node string,
	d heartbeatpb.DispatcherID, checkpoint uint64) spanID {
	id := db.insert(s, mode, checkpoint)
	db.counts[stateAbsent]--
	db.counts[stateReplicating]++
	r := &db.recs[id]
	r.state = stateReplicating
	db.attach(id, node, d, true)
	return id
}

func (db *spanDB) insert(s heartbeatpb.TableSpan, mode heartbeatpb.Mode, checkpoint uint64) spanID {
	if len(db.recs) >= math.MaxUint32 {
		panic("maintainer: span DB full")
	}
	id := spanID(len(db.recs))
	db.recs = append(db.recs, spanRecord{span: s, mode: mode, state: stateAbsent})
	db.cps = append(db.cps, checkpoint)
	db.byTable[s.TableId] = append(db.byTable[s.TableId], id)
	db.counts[stateAbsent]++
	return id
}

func (db *spanDB) setState(id spanID, s spanState) {
	r := &db.recs[id]
	db.counts[r.state]--
	db.counts[s]++
	r.state = s
}

func (db *spanDB) attach(id spanID, node string, d heartbeatpb.DispatcherID, bound bool) {
	r := &db.recs[id]
	r.node, r.dispatcher, r.bound = node, d, bound
	set := db.byNode[node]
	if set == nil {
		set = make(map[spanID]struct{})
		db.byNode[node] = set
	}
	set[id] = struct{}{}
	if bound {
		db.byDispatcher[d] = id
	}
}

func (db *spanDB) detach(id spanID) {
	r := &db.recs[id]
	if r.node != "" {
		if set := db.byNode[r.node]; set != nil {
			delete(set, id)
			if len(set) == 0 {
				delete(db.byNode, r.node)
			}
		}
	}
	if r.bound && db.byDispatcher[r.dispatcher] == id {
		delete(db.byDispatcher, r.dispatcher)
	}
	r.node, r.dispatcher, r.bound = "", heartbeatpb.DispatcherID{}, false
}

func (db *spanDB) enqueue(id spanID) {
	r := &db.recs[id]
	if r.queued {
		return
	}
	r.queued = true
	db.absent = append(db.absent, id)
}

// beginAdd hands an absent span to an Add operator placing it on node as dispatcher d. The node
// counts it from now on, so the next scheduler round sees the load.
func (db *spanDB) beginAdd(id spanID, op heartbeatpb.OperatorID, node string, d heartbeatpb.DispatcherID) {
	r := &db.recs[id]
	if r.state != stateAbsent || r.op != noOp {
		panic(fmt.Sprintf("maintainer: add of span %d in state %v", id, r.state))
	}
	db.setState(id, stateScheduling)
	r.op = op
	db.attach(id, node, d, false)
}

// beginOp hands a replicating span to an operator that changes its dispatcher (Remove, Move).
func (db *spanDB) beginOp(id spanID, op heartbeatpb.OperatorID) {
	r := &db.recs[id]
	if r.state != stateReplicating || r.op != noOp {
		panic(fmt.Sprintf("maintainer: operator on span %d in state %v", id, r.state))
	}
	db.setState(id, stateScheduling)
	r.op = op
}

// bind makes dispatcher d on node the span's server.
func (db *spanDB) bind(id spanID, node string, d heartbeatpb.DispatcherID, checkpoint uint64) {
	db.detach(id)
	r := &db.recs[id]
	r.op = noOp
	db.cps[id] = max(db.cps[id], checkpoint)
	db.setState(id, stateReplicating)
	db.attach(id, node, d, true)
}

// markAbsent leaves the span without a dispatcher, resuming from checkpoint. The checkpoint is
// taken as given: it may be below the last one seen when that was never confirmed final.
func (db *spanDB) markAbsent(id spanID, checkpoint uint64) {
	db.detach(id)
	r := &db.recs[id]
	r.op = noOp
	db.cps[id] = checkpoint
	db.setState(id, stateAbsent)
	db.enqueue(id)
}

// release ends an operator that left the span as it found it.
func (db *spanDB) release(id spanID) {
	r := &db.recs[id]
	r.op = noOp
	if r.bound {
		db.setState(id, stateReplicating)
		return
	}
	db.markAbsent(id, db.cps[id])
}

// advance raises a replicating span's checkpoint; checkpoints only move forward.
func (db *spanDB) advance(id spanID, ts uint64) {
	if ts > db.cps[id] {
		db.cps[id] = ts
	}
}

// popAbsent returns up to n spans that are absent and free, oldest first.
func (db *spanDB) popAbsent(n int) []spanID {
	var out []spanID
	for db.head < len(db.absent) && len(out) < n {
		id := db.absent[db.head]
		db.head++
		r := &db.recs[id]
		r.queued = false
		if r.state == stateAbsent && r.op == noOp {
			out = append(out, id)
		}
	}
	// Compact once the consumed prefix dominates, so the queue does not grow without bound.
	if db.head > 1024 && db.head*2 > len(db.absent) {
		db.absent = append(db.absent[:0], db.absent[db.head:]...)
		db.head = 0
	}
	return out
}

// onNode returns the spans bound to or being added on node, in ID order.
func (db *spanDB) onNode(node string) []spanID {
	set := db.byNode[node]
	out := make([]spanID, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
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

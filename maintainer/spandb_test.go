package maintainer

import (
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// counts returns the DB's state counts, absent/scheduling/replicating.
func counts(db *spanDB) [numStates]int { return db.counts }

// TestSpanLifecycle walks one span through every lifecycle transition and checks the counts and
// indexes the lifecycle implies after each step.
func TestSpanLifecycle(t *testing.T) {
	db := newSpanDB(0)
	op := heartbeatpb.OperatorID{Epoch: 1, Seq: 1}
	d1, d2 := heartbeatpb.DispatcherID{Hi: 1, Lo: 1}, heartbeatpb.DispatcherID{Hi: 1, Lo: 2}
	sid := db.insertAbsent(span.TableSpan(7), heartbeatpb.ModeDefault, 100)
	check := func(step string, life lifecycle, want [numStates]int, node string, indexed bool) {
		t.Helper()
		r := db.get(sid)
		if r.life != life || counts(db) != want || db.nodeOf(sid) != node {
			t.Fatalf("%s: life %v counts %v node %q, want %v %v %q", step, r.life, counts(db), db.nodeOf(sid), life, want, node)
		}
		if _, ok := db.byDispatcher.get(r.dispatcher); ok != indexed {
			t.Fatalf("%s: dispatcher indexed %v, want %v", step, ok, indexed)
		}
	}
	check("insert", lifeAbsent, [numStates]int{1, 0, 0}, "", false)
	db.beginAdd(sid, op, "n1", d1)
	check("beginAdd", lifeAdding, [numStates]int{0, 1, 0}, "n1", false)
	db.release(sid) // an Add that failed leaves the span absent again
	check("release adding", lifeAbsent, [numStates]int{1, 0, 0}, "", false)
	db.beginAdd(sid, op, "n1", d1)
	db.bind(sid, "n1", d1, 120)
	check("bind", lifeReplicating, [numStates]int{0, 0, 1}, "n1", true)
	db.beginOp(sid, op)
	check("beginOp", lifeChanging, [numStates]int{0, 1, 0}, "n1", true)
	db.release(sid) // a Move that rolled back keeps its dispatcher
	check("release changing", lifeReplicating, [numStates]int{0, 0, 1}, "n1", true)
	db.beginOp(sid, op)
	db.bind(sid, "n2", d2, 110)
	check("rebind", lifeReplicating, [numStates]int{0, 0, 1}, "n2", true)
	if _, ok := db.byDispatcher.get(d1); ok {
		t.Fatal("old dispatcher still indexed after the move")
	}
	if db.checkpoint(sid) != 120 {
		t.Fatalf("checkpoint %d went backwards on bind", db.checkpoint(sid))
	}
	db.markAbsent(sid, 115)
	check("markAbsent", lifeAbsent, [numStates]int{1, 0, 0}, "", false)
	db.retire(sid)
	check("retire", lifeRetired, [numStates]int{0, 0, 0}, "", false)
	if len(db.byTable.get(7)) != 0 || len(db.popAbsent(10)) != 0 {
		t.Fatal("a tombstone is still indexed or placeable")
	}
	if cp, _ := db.minCheckpoint(); cp != ^uint64(0) {
		t.Fatalf("a tombstone holds the minimum checkpoint at %d", cp)
	}
}

// TestTombstonesReclaimed: a retired record is emptied once nothing reads it, and not before.
func TestTombstonesReclaimed(t *testing.T) {
	db := newSpanDB(0)
	d := heartbeatpb.DispatcherID{Hi: 1, Lo: 1}
	held := db.insertReplicating(span.TableSpan(1), heartbeatpb.ModeDefault, "n1", d, 100)
	queued := db.insertAbsent(span.TableSpan(2), heartbeatpb.ModeDefault, 100) // still in the absent queue
	free := db.insertReplicating(span.TableSpan(3), heartbeatpb.ModeDefault, "n1", heartbeatpb.DispatcherID{Hi: 1, Lo: 3}, 100)
	live := db.insertAbsent(span.TableSpan(4), heartbeatpb.ModeDefault, 100)
	for _, sid := range []spanID{held, queued, free} {
		db.retire(sid)
	}
	got := db.reclaim(func(sid spanID) bool { return sid == held })
	if len(got) != 1 || got[0] != free {
		t.Fatalf("reclaimed %v, want only %d", got, free)
	}
	if db.spanOf(free).StartKey != nil || db.spanOf(held).TableId != 1 || db.spanOf(queued).TableId != 2 {
		t.Fatal("reclaim emptied the wrong records")
	}
	// Once the queue entry is consumed and the holder lets go, the rest go too.
	if got := db.popAbsent(10); len(got) != 1 || got[0] != live {
		t.Fatalf("popped %v, want only the live span %d", got, live)
	}
	if got := db.reclaim(func(spanID) bool { return false }); len(got) != 2 {
		t.Fatalf("reclaimed %v, want the two remaining tombstones", got)
	}
	if len(db.tombs) != 0 {
		t.Fatalf("tombstones left: %v", db.tombs)
	}
	if got := db.insertAbsent(span.TableSpan(5), heartbeatpb.ModeDefault, 100); got != 4 {
		t.Fatalf("new span got ID %d: IDs are age order and never reused", got)
	}
}

// TestNodeListsFollowAttachAndDetach drives spans on and off nodes in a pseudo-random order
// against a plain model and checks after every step that each node's list holds exactly its
// spans, each record's nodePos points at itself, and a node without spans has no list.
func TestNodeListsFollowAttachAndDetach(t *testing.T) {
	db := newSpanDB(0)
	const spans = 3000
	nodes := []string{"n1", "n2", "n3"}
	model := map[spanID]string{}
	for i := 0; i < spans; i++ {
		db.insertAbsent(span.TableSpan(int64(i+1)), heartbeatpb.ModeDefault, 100)
	}
	check := func(step int) {
		t.Helper()
		seen := 0
		for node, ids := range db.byNode {
			if len(ids) == 0 {
				t.Fatalf("step %d: node %s keeps an empty list", step, node)
			}
			for pos, sid := range ids {
				r := db.get(sid)
				if db.nodeOf(sid) != node || model[sid] != node || int(r.nodePos) != pos {
					t.Fatalf("step %d: %s[%d] = span %d on %q at %d, model says %q", step, node, pos, sid,
						db.nodeOf(sid), r.nodePos, model[sid])
				}
			}
			seen += len(ids)
		}
		if seen != len(model) {
			t.Fatalf("step %d: lists hold %d spans, the model %d", step, seen, len(model))
		}
	}
	rng := uint64(1)
	next := func(n int) int { rng = rng*6364136223846793005 + 1442695040888963407; return int(rng>>33) % n }
	for step := 0; step < 20000; step++ {
		sid := spanID(next(spans))
		node := nodes[next(len(nodes))]
		if step > 15000 {
			node = "n1" // then drain the other nodes: their lists must go
		}
		switch r := db.get(sid); {
		case r.life == lifeAbsent:
			db.beginAdd(sid, heartbeatpb.OperatorID{Epoch: 1, Seq: uint64(step + 1)}, node, heartbeatpb.DispatcherID{Hi: 1, Lo: uint64(step + 1)})
			model[sid] = node
		case r.life == lifeAdding && next(2) == 0:
			db.bind(sid, db.nodeOf(sid), r.dispatcher, 120)
		case step > 15000 && db.nodeOf(sid) != "n1", next(3) == 0:
			db.markAbsent(sid, 100)
			delete(model, sid)
		}
		if step%997 == 0 || step > 19990 {
			check(step)
		}
	}
	for sid := spanID(0); sid < spans; sid++ {
		if n := db.nodeOf(sid); n != "" && n != "n1" {
			db.markAbsent(sid, 100)
			delete(model, sid)
		}
	}
	check(20000)
	if len(db.byNode) != 1 {
		t.Fatalf("after the drain of n2 and n3, lists for %d nodes", len(db.byNode))
	}
}

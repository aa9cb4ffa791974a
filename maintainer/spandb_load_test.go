package maintainer

import (
	"math/rand"
	"reflect"
	"slices"
	"testing"

	"github.com/tidemark/tidemark/bootstrap"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// TestLoadMatchesInserts: loading a plan in bulk leaves the DB exactly as inserting its spans
// one by one does (records, checkpoints, every index, the absent queue's order, counts), for
// plans sorted by table as Restore makes them and for unsorted ones (the one-by-one path); and
// a table that grows after the load does not write over its neighbour's share of the array.
func TestLoadMatchesInserts(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	nodes := []string{"n1", "n2", "n3"}
	for round := 0; round < 50; round++ {
		var repl []bootstrap.Placement
		var absent []bootstrap.Absent
		seq := uint64(0)
		for table := int64(rng.Intn(3)); table < 40; table += 1 + int64(rng.Intn(3)) {
			pieces := []heartbeatpb.TableSpan{span.TableSpan(table)}
			if k := rng.Intn(4); k > 1 {
				pieces, _ = span.Split(pieces[0], k)
			}
			for _, s := range pieces {
				for mode := heartbeatpb.ModeDefault; mode <= heartbeatpb.Mode(rng.Intn(2)); mode++ {
					seq++
					if rng.Intn(3) == 0 {
						absent = append(absent, bootstrap.Absent{Span: s, Mode: mode, ResumeTs: seq})
						continue
					}
					repl = append(repl, bootstrap.Placement{Span: s, Mode: mode, Node: nodes[rng.Intn(len(nodes))],
						Dispatcher: heartbeatpb.DispatcherID{Hi: 3, Lo: seq}, Checkpoint: 1000 + seq})
				}
			}
		}
		if round%5 == 4 { // not sorted by table
			rng.Shuffle(len(repl), func(i, j int) { repl[i], repl[j] = repl[j], repl[i] })
		}
		want, got := newSpanDB(0), newSpanDB(0)
		insertPlan(want, repl, absent)
		got.load(repl, absent, 4)
		compareDBs(t, round, want, got)
		// Grow the first table of the plan after the load: its neighbours must keep their IDs.
		if len(repl) > 0 {
			s := repl[0].Span
			extra := heartbeatpb.TableSpan{TableId: s.TableId, StartKey: s.EndKey, EndKey: append(slices.Clone(s.EndKey), 0)}
			want.insertAbsent(extra, heartbeatpb.ModeDefault, 7)
			got.insertAbsent(extra, heartbeatpb.ModeDefault, 7)
			compareDBs(t, round, want, got)
		}
	}
}

func compareDBs(t *testing.T, round int, want, got *spanDB) {
	t.Helper()
	if !reflect.DeepEqual(want.recs, got.recs) || !reflect.DeepEqual(want.cps, got.cps) {
		t.Fatalf("round %d: records or checkpoints differ", round)
	}
	if want.counts != got.counts {
		t.Fatalf("round %d: counts %v, want %v", round, got.counts, want.counts)
	}
	if want.byTable.len() != got.byTable.len() || len(want.byNode) != len(got.byNode) {
		t.Fatalf("round %d: %d tables %d nodes indexed, want %d %d", round, got.byTable.len(), len(got.byNode),
			want.byTable.len(), len(want.byNode))
	}
	want.byTable.each(func(table int64, ids []spanID) {
		if !slices.Equal(ids, got.byTable.get(table)) {
			t.Fatalf("round %d: table %d lists %v, want %v", round, table, got.byTable.get(table), ids)
		}
	})
	for n, ids := range want.byNode {
		if !slices.Equal(ids, got.byNode[n]) {
			t.Fatalf("round %d: node %s lists %v, want %v", round, n, got.byNode[n], ids)
		}
	}
	for id := range want.recs {
		sid, ok := want.byDispatcher.get(want.recs[id].dispatcher)
		gsid, gok := got.byDispatcher.get(got.recs[id].dispatcher)
		if ok != gok || sid != gsid {
			t.Fatalf("round %d: dispatcher of span %d indexed (%v %d), want (%v %d)", round, id, gok, gsid, ok, sid)
		}
	}
	if !slices.Equal(want.popAbsent(1<<20), got.popAbsent(1<<20)) {
		t.Fatalf("round %d: absent queues differ", round)
	}
}

// A restored plan with gaps (tables whose spans resumed operators hold) keeps its tables in the
// dense run rather than the map, while IDs too sparse to fill half a run still go to the map;
// the resumed operators' spans inserted afterwards land in the gaps.
func TestLoadKeepsGappedTablesDense(t *testing.T) {
	var repl []bootstrap.Placement
	for table := int64(1); table <= 1000; table++ {
		if table%10 == 3 {
			continue // held by an operator being resumed
		}
		repl = append(repl, bootstrap.Placement{Span: span.TableSpan(table), Node: "n1",
			Dispatcher: heartbeatpb.DispatcherID{Hi: 1, Lo: uint64(table)}, Checkpoint: 10})
	}
	far := int64(1) << 40
	repl = append(repl, bootstrap.Placement{Span: span.TableSpan(far), Node: "n1",
		Dispatcher: heartbeatpb.DispatcherID{Hi: 1, Lo: uint64(far)}, Checkpoint: 10})
	db := newSpanDB(0)
	db.load(repl, nil, 100)
	if len(db.byTable.other) != 1 || db.byTable.other[far] == nil {
		t.Fatalf("map holds %d tables, want only the far one", len(db.byTable.other))
	}
	if len(db.byTable.dense) != 1000 {
		t.Fatalf("dense run covers %d tables, want 1000", len(db.byTable.dense))
	}
	for table := int64(3); table <= 1000; table += 10 {
		db.insertAbsent(span.TableSpan(table), heartbeatpb.ModeDefault, 10)
	}
	if len(db.byTable.other) != 1 || db.byTable.len() != 1001 {
		t.Fatalf("after the resumed spans: %d tables in the map, %d in all", len(db.byTable.other), db.byTable.len())
	}
}

func TestDenseExtent(t *testing.T) {
	for _, c := range []struct {
		tables []int64
		want   int
	}{
		{nil, 0},
		{[]int64{5}, 1},
		{[]int64{5, 6, 7}, 3},
		{[]int64{1, 3, 5, 7}, 7},       // exactly half
		{[]int64{1, 4}, 4},             // 2 tables in 4 IDs is still half full
		{[]int64{1, 5}, 1},             // 2 in 5 is not
		{[]int64{1, 2, 100}, 2},        // the far table does not stretch the run
		{[]int64{1, 100, 101, 102}, 1}, // nor does a far cluster
	} {
		got := denseExtent(len(c.tables), func(i int) int64 { return c.tables[i] })
		if got != c.want {
			t.Errorf("denseExtent(%v) = %d, want %d", c.tables, got, c.want)
		}
	}
}

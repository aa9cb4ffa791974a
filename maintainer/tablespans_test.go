package maintainer

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTableSpansMatchesAMap drives tableSpans with random adds and removes over tables inside,
// at the edges of and far from a dense run, and after each step compares get, len and each
// with a plain map.
func TestTableSpansMatchesAMap(t *testing.T) {
	var ts tableSpans
	ref := map[int64][]spanID{}
	// Tables 100..149 arrive in order first (the dense run), then anything.
	for id := int64(100); id < 150; id++ {
		ts.add(id, spanID(id))
		ref[id] = append(ref[id], spanID(id))
	}
	tables := []int64{1, 99, 100, 101, 125, 148, 149, 150, 151, 1 << 40}
	rng := rand.New(rand.NewPCG(3, 4))
	for step := range 3000 {
		tb := tables[rng.IntN(len(tables))]
		if ids := ts.get(tb); len(ids) > 0 && rng.IntN(2) == 0 {
			if rng.IntN(2) == 0 {
				ids = slices.Clone(ids)
			}
			// In place half the time, as spanDB.retire does: slices.Delete clears the
			// element it frees, which may be the table's slot itself.
			ids = slices.Delete(ids, 0, 1)
			ts.set(tb, ids)
			if len(ids) == 0 {
				delete(ref, tb)
			} else {
				ref[tb] = slices.Clone(ids) // not ts's array: both append to their own
			}
		} else {
			id := spanID(step + 1000)
			ts.add(tb, id)
			ref[tb] = append(ref[tb], id)
		}
		if ts.len() != len(ref) {
			t.Fatalf("step %d: len %d, want %d", step, ts.len(), len(ref))
		}
		for _, tb := range tables {
			if !slices.Equal(ts.get(tb), ref[tb]) {
				t.Fatalf("step %d: table %d lists %v, want %v", step, tb, ts.get(tb), ref[tb])
			}
		}
		seen := 0
		ts.each(func(tb int64, ids []spanID) {
			seen++
			if !slices.Equal(ids, ref[tb]) {
				t.Fatalf("step %d: each gave table %d %v, want %v", step, tb, ids, ref[tb])
			}
		})
		if seen != len(ref) {
			t.Fatalf("step %d: each visited %d tables, want %d", step, seen, len(ref))
		}
	}
	if len(ts.dense) < 50 {
		t.Fatalf("the in-order tables did not stay dense: %d in the slice", len(ts.dense))
	}
}

package dispatchermanager

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// TestWorkingIndexMatchesAList drives the index with random inserts and removes of the pieces
// of two tables in two modes, and after each step compares it with a plain list: every piece
// it holds is found by overlapping (and a piece it does not hold is not), each lists every
// table's pieces sorted by start key, and a table is in one half only, with lists of two or
// more in many.
func TestWorkingIndexMatchesAList(t *testing.T) {
	var pieces []*dispatcherEntry
	for _, table := range []int64{1, 2} {
		parts, err := span.Split(span.TableSpan(table), 6)
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range []heartbeatpb.Mode{heartbeatpb.ModeDefault, heartbeatpb.ModeRedo} {
			for i, s := range parts {
				pieces = append(pieces, &dispatcherEntry{id: heartbeatpb.DispatcherID{Hi: uint64(table), Lo: uint64(i)<<8 | uint64(mode)}, span: s, mode: mode})
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	w := newWorkingIndex()
	in := map[*dispatcherEntry]bool{}
	for step := range 2000 {
		e := pieces[rng.IntN(len(pieces))]
		if in[e] {
			w.remove(e)
		} else {
			w.insert(e)
		}
		in[e] = !in[e]
		for _, p := range pieces {
			got := w.overlapping(p.mode, p.span)
			if in[p] != (got == p) || !in[p] && got != nil {
				t.Fatalf("step %d: overlapping(%v) = %v, held %v", step, p.id, got, in[p])
			}
		}
		if err := w.shapeErr(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		listed := 0
		w.each(func(k indexKey, list []*dispatcherEntry) {
			for i, e := range list {
				listed++
				if !in[e] || e.mode != k.mode || e.span.TableId != k.table {
					t.Fatalf("step %d: %v listed under %+v", step, e.id, k)
				}
				if i > 0 && bytes.Compare(list[i-1].span.StartKey, e.span.StartKey) >= 0 {
					t.Fatalf("step %d: %v listed before %v", step, list[i-1].id, e.id)
				}
			}
		})
		held := 0
		for _, v := range in {
			if v {
				held++
			}
		}
		if listed != held {
			t.Fatalf("step %d: %d listed, %d held", step, listed, held)
		}
	}
}

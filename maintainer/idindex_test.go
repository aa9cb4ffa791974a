package maintainer

import (
	"math/rand"
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// TestIDIndexAgainstMap drives the index and a Go map with the same puts, deletes and gets, on
// runs of consecutive IDs (as a maintainer mints them) mixed with scattered ones, and checks
// that they always agree and that emptied blocks are given back and reused.
func TestIDIndexAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	x := newIDIndex(0)
	want := map[heartbeatpb.DispatcherID]spanID{}
	randomID := func() heartbeatpb.DispatcherID {
		switch rng.Intn(3) {
		case 0: // a run of one epoch
			return heartbeatpb.DispatcherID{Hi: 5, Lo: uint64(rng.Intn(300))}
		case 1: // another epoch, same counters
			return heartbeatpb.DispatcherID{Hi: 6, Lo: uint64(rng.Intn(300))}
		default: // scattered, extremes included
			return heartbeatpb.DispatcherID{Hi: rng.Uint64(), Lo: rng.Uint64() | uint64(rng.Intn(2))<<63}
		}
	}
	for step := 0; step < 200_000; step++ {
		id := randomID()
		switch rng.Intn(3) {
		case 0, 1:
			sid := spanID(rng.Uint32())
			x.put(id, sid)
			want[id] = sid
		default:
			x.del(id)
			delete(want, id)
		}
		probe := randomID()
		got, ok := x.get(probe)
		w, wok := want[probe]
		if ok != wok || got != w {
			t.Fatalf("step %d: get(%v) = %d, %v; want %d, %v", step, probe, got, ok, w, wok)
		}
		if x.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", step, x.len(), len(want))
		}
	}
	for id, w := range want {
		if got, ok := x.get(id); !ok || got != w {
			t.Fatalf("get(%v) = %d, %v; want %d", id, got, ok, w)
		}
		x.del(id)
	}
	if x.len() != 0 || len(x.blocks) != 0 || len(x.free) != len(x.slab) {
		t.Fatalf("emptied: len %d, %d blocks mapped, %d of %d blocks free", x.len(), len(x.blocks), len(x.free), len(x.slab))
	}
	slab := len(x.slab)
	for i := 0; i < 10*idBlockSize; i++ {
		x.put(heartbeatpb.DispatcherID{Hi: 9, Lo: uint64(i)}, spanID(i))
	}
	if len(x.slab) != slab {
		t.Fatalf("refilled with 10 blocks: the slab grew from %d to %d blocks instead of reusing", slab, len(x.slab))
	}
}

// TestIDIndexRuns checks that consecutive IDs share blocks: a million spans cost a sixteenth as
// many blocks.
func TestIDIndexRuns(t *testing.T) {
	x := newIDIndex(1000)
	for i := 1; i <= 1000; i++ {
		x.put(heartbeatpb.DispatcherID{Hi: 3, Lo: uint64(i)}, spanID(i))
	}
	if n := len(x.blocks); n > 1000/idBlockSize+1 {
		t.Fatalf("1000 consecutive IDs in %d blocks", n)
	}
	if got, ok := x.get(heartbeatpb.DispatcherID{Hi: 4, Lo: 1}); ok {
		t.Fatalf("another epoch's ID found: %d", got)
	}
}

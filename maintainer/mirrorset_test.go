package maintainer

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// TestMirrorSetMatchesAMap drives a mirrorSet, loaded with a sorted base as a bootstrap answer
// loads it, through random puts and removes (enough for several merges) and compares get, len
// and each with a plain map after every step.
func TestMirrorSetMatchesAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	id := func(k int) heartbeatpb.DispatcherID {
		return heartbeatpb.DispatcherID{Hi: uint64(k % 3), Lo: uint64(k)}
	}
	const space = 6000
	ref := map[heartbeatpb.DispatcherID]mirrored{}
	var s mirrorSet
	// A base of every other ID, sorted as a node lists them.
	for k := 0; k < space; k += 2 {
		ref[id(k)] = newMirrored(heartbeatpb.StateWorking, uint64(k)<<8)
	}
	s.base = make([]mirrorEntry, 0, len(ref))
	for d, m := range ref {
		s.base = append(s.base, mirrorEntry{id: d, m: m})
	}
	slices.SortFunc(s.base, func(a, b mirrorEntry) int { return compareIDs(a.id, b.id) })
	s.n = len(s.base)
	merges := 0
	for step := 0; step < 20000; step++ {
		d := id(rng.IntN(space))
		before := len(s.changes)
		if rng.IntN(3) == 0 {
			s.remove(d)
			delete(ref, d)
		} else {
			m := newMirrored(heartbeatpb.ComponentState(1+rng.IntN(3)), rng.Uint64())
			s.put(d, m)
			ref[d] = m
		}
		if before > 0 && len(s.changes) == 0 {
			merges++
		}
		if s.len() != len(ref) {
			t.Fatalf("step %d: len %d, want %d", step, s.len(), len(ref))
		}
		for i := 0; i < 8; i++ {
			probe := id(rng.IntN(space))
			got, ok := s.get(probe)
			want, wok := ref[probe]
			if ok != wok || got != want {
				t.Fatalf("step %d: get %v = %v,%v, want %v,%v", step, probe, got, ok, want, wok)
			}
		}
		if step%997 == 0 {
			seen := 0
			s.each(func(d heartbeatpb.DispatcherID, m mirrored) {
				seen++
				if ref[d] != m {
					t.Fatalf("step %d: each gave %v %v, want %v", step, d, m, ref[d])
				}
			})
			if seen != len(ref) {
				t.Fatalf("step %d: each visited %d, want %d", step, seen, len(ref))
			}
		}
	}
	if merges < 3 {
		t.Fatalf("only %d merges: the test does not exercise them", merges)
	}
	for i := 1; i < len(s.base); i++ {
		if !s.base[i-1].id.Less(s.base[i].id) {
			t.Fatalf("base out of order at %d", i)
		}
	}
}

// The packed value keeps the state and compares fingerprints on their upper 56 bits.
func TestMirroredPacking(t *testing.T) {
	m := newMirrored(heartbeatpb.StateStopped, 0xabcdef0123456789)
	if m.state() != heartbeatpb.StateStopped || !m.serves(0xabcdef0123456789) || m.serves(0xabcdef0123456889) {
		t.Fatalf("packing lost the state or the fingerprint: %x", uint64(m))
	}
}

// each calls fn with every dispatcher of the set, in no set order (what the checks compare).
func (s *mirrorSet) each(fn func(id heartbeatpb.DispatcherID, m mirrored)) {
	for _, e := range s.base {
		if _, changed := s.changes[e.id]; !changed {
			fn(e.id, e.m)
		}
	}
	for id, c := range s.changes {
		if !c.gone {
			fn(id, c.m)
		}
	}
}

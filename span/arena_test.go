package span

import (
	"bytes"
	"testing"
)

// A KeyArena's spans equal TableSpan's for ascending runs, jumps, repeats and descents, across
// block boundaries; consecutive tables share the boundary key; and appending to a key cannot
// write over its neighbour.
func TestKeyArenaMatchesTableSpan(t *testing.T) {
	var a KeyArena
	ids := []int64{0, 1, 2, 7, 7, 3, 1 << 40, 1<<63 - 2}
	for id := int64(100); id < 100+2*arenaBlock/tableKeyLen; id++ {
		ids = append(ids, id)
	}
	var prev int64 = -2
	var prevEnd []byte
	for _, id := range ids {
		got, want := a.TableSpan(id), TableSpan(id)
		if !Equal(got, want) || got.TableId != id {
			t.Fatalf("table %d: %s, want %s", id, String(got), String(want))
		}
		if id == prev+1 && &got.StartKey[0] != &prevEnd[0] {
			t.Fatalf("table %d does not share its start key with table %d's end", id, prev)
		}
		prev, prevEnd = id, got.EndKey
	}
	s1, s2 := a.TableSpan(5000), a.TableSpan(5001)
	end2 := bytes.Clone(s2.EndKey)
	_ = append(s2.StartKey, 0xff) // s2.StartKey is s1.EndKey: capped, so this copies
	_ = append(s1.StartKey, 0xff)
	if !bytes.Equal(s2.EndKey, end2) || !Equal(s1, TableSpan(5000)) || !Equal(s2, TableSpan(5001)) {
		t.Fatal("an append to an arena key wrote over its neighbour")
	}
}

package maintainer

import (
	"bytes"
	"reflect"
	"testing"
	"unsafe"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// TestSpanRecordHoldsNoPointer: the collector skips a pointer-free slice, so a million records
// cost no marking. A string, slice or pointer field added to spanRecord undoes that (and the
// size, 120 B before keys and node moved out).
func TestSpanRecordHoldsNoPointer(t *testing.T) {
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, path string) {
		switch ty.Kind() {
		case reflect.Struct:
			for i := 0; i < ty.NumField(); i++ {
				walk(ty.Field(i).Type, path+"."+ty.Field(i).Name)
			}
		case reflect.Array:
			walk(ty.Elem(), path+"[]")
		case reflect.Pointer, reflect.Slice, reflect.String, reflect.Map, reflect.Chan, reflect.Func,
			reflect.Interface, reflect.UnsafePointer:
			t.Errorf("spanRecord%s is a %v: records must hold no pointer", path, ty.Kind())
		}
	}
	walk(reflect.TypeOf(spanRecord{}), "")
	if size := unsafe.Sizeof(spanRecord{}); size > 72 {
		t.Errorf("spanRecord is %d B, want at most 72", size)
	}
}

// TestKeyArena: spans come back as put, appending to a returned key never overwrites the next
// span's, and compact keeps exactly the spans still named.
func TestKeyArena(t *testing.T) {
	var a keyArena
	pieces, err := span.Split(span.TableSpan(3), 8)
	if err != nil {
		t.Fatal(err)
	}
	refs := make([]keyRef, len(pieces))
	for i, p := range pieces {
		refs[i] = a.put(p)
	}
	for i, p := range pieces {
		if got := a.span(3, refs[i]); !span.Equal(got, p) {
			t.Fatalf("piece %d: got %s, want %s", i, span.String(got), span.String(p))
		}
	}
	first := a.span(3, refs[0])
	_ = append(first.StartKey, 0xff, 0xff, 0xff)
	if got := a.span(3, refs[0]); !bytes.Equal(got.EndKey, pieces[0].EndKey) {
		t.Fatal("an append to a returned start key overwrote its end key")
	}
	if got := a.span(3, keyRef{}); got.StartKey != nil || got.EndKey != nil {
		t.Fatalf("the zero ref gives %v, want no keys", got)
	}
	// Release all but the odd pieces, then compact.
	for i := 0; i < len(refs); i += 2 {
		a.release(refs[i])
		refs[i] = keyRef{}
	}
	before := len(a.buf)
	a.compact(func(move func(*keyRef)) {
		for i := range refs {
			move(&refs[i])
		}
	})
	if a.garbage != 0 || len(a.buf) >= before {
		t.Fatalf("compact kept %d of %d bytes, garbage %d", len(a.buf), before, a.garbage)
	}
	for i := 1; i < len(pieces); i += 2 {
		if got := a.span(3, refs[i]); !span.Equal(got, pieces[i]) {
			t.Fatalf("piece %d after compact: got %s, want %s", i, span.String(got), span.String(pieces[i]))
		}
	}
}

// TestNodeNames: numbers are stable while held, 0 is no node, and a dropped name's number is
// reused rather than the table growing.
func TestNodeNames(t *testing.T) {
	var n nodeNames
	if n.ref("") != 0 || n.name(0) != "" {
		t.Fatal("the empty name must be number 0")
	}
	a, b := n.ref("n1"), n.ref("n2")
	if a == 0 || b == 0 || a == b || n.ref("n1") != a || n.name(a) != "n1" || n.name(b) != "n2" {
		t.Fatalf("n1=%d n2=%d: numbers not distinct and stable", a, b)
	}
	for i := 0; i < 100; i++ { // nodes coming and going under new names
		n.drop("n1")
		a = n.ref(string(rune('a'+i%26)) + "-x")
		n.drop(n.name(a))
		a = n.ref("n1")
	}
	if len(n.names) > 3 {
		t.Fatalf("the table grew to %d names for 2 live nodes", len(n.names))
	}
	if n.name(b) != "n2" {
		t.Fatal("a held number changed its name")
	}
}

// TestSpanDBCompactsKeysOfRetiredSpans: a split-merge churn retires spans for good; once their
// keys are most of the arena, reclaim compacts it and the live spans read back the same.
func TestSpanDBCompactsKeysOfRetiredSpans(t *testing.T) {
	db := newSpanDB(0)
	keep := db.insertAbsent(span.TableSpan(1), heartbeatpb.ModeDefault, 100)
	compacted, peak := false, 0
	for round := 0; !compacted; round++ {
		pieces, err := span.Split(span.TableSpan(2), 64)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pieces {
			db.retire(db.insertAbsent(p, heartbeatpb.ModeDefault, 100))
		}
		db.absent.pop(len(db.recs), func(spanID) bool { return true }) // so reclaim may empty them
		peak = max(peak, len(db.keys.buf))
		db.reclaim(func(spanID) bool { return false })
		compacted = len(db.keys.buf) < peak
		if round > 10_000 {
			t.Fatalf("no compaction after 10,000 rounds: %d B of keys, %d garbage", len(db.keys.buf), db.keys.garbage)
		}
	}
	if live := db.get(keep).keys.size(); peak < 1<<20 || db.keys.garbage != 0 || len(db.keys.buf) != live {
		t.Fatalf("compacted at %d B to %d B with %d B garbage, want from past 1 MiB to the live span's %d B",
			peak, len(db.keys.buf), db.keys.garbage, live)
	}
	if got := db.spanOf(keep); !span.Equal(got, span.TableSpan(1)) {
		t.Fatalf("the live span reads %s after compaction", span.String(got))
	}
}

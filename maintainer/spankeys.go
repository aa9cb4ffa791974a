package maintainer

import (
	"math"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// keyArena holds the span DB's keys: every span's start and end key back to back in one byte
// slice, a record naming them by offset (keyRef). Records then hold no pointer, so the
// collector skips the million of them instead of following two key slices each on every cycle,
// and a key costs its bytes, not a 24 B slice header and an allocation of its own (at a million
// one-span tables the records were 120 MB, a third of the maintainer's heap).
//
// The arena only grows: a span handed out keeps pointing at bytes that never change. Released
// keys are garbage until compact copies the live ones to a new arena, which the DB does when
// garbage is most of it (a changefeed that splits and merges for months).
type keyArena struct {
	buf     []byte
	garbage int // bytes of released keys still in buf
}

// keyRef names one span's keys in the arena: start is buf[off:off+startLen], end follows it.
type keyRef struct {
	off, startLen, endLen uint32
}

func (k keyRef) size() int { return int(k.startLen) + int(k.endLen) }

// put copies s's keys into the arena.
func (a *keyArena) put(s heartbeatpb.TableSpan) keyRef {
	n := len(s.StartKey) + len(s.EndKey)
	if uint64(len(a.buf))+uint64(n) > math.MaxUint32 {
		panic("maintainer: span key arena full") // 4 GiB of keys: far past any changefeed's size
	}
	k := keyRef{off: uint32(len(a.buf)), startLen: uint32(len(s.StartKey)), endLen: uint32(len(s.EndKey))}
	a.buf = append(a.buf, s.StartKey...)
	a.buf = append(a.buf, s.EndKey...)
	return k
}

// span rebuilds table's span from k. The keys are capped views of the arena: an append to one
// makes a copy, never writes over the next span's keys.
func (a *keyArena) span(table int64, k keyRef) heartbeatpb.TableSpan {
	s := heartbeatpb.TableSpan{TableId: table}
	if k.startLen > 0 {
		end := k.off + k.startLen
		s.StartKey = a.buf[k.off:end:end]
	}
	if k.endLen > 0 {
		from := k.off + k.startLen
		end := from + k.endLen
		s.EndKey = a.buf[from:end:end]
	}
	return s
}

// release counts k's bytes as garbage; the caller forgets k.
func (a *keyArena) release(k keyRef) { a.garbage += k.size() }

// wasteful: garbage is most of the arena and worth a copy (at least 1 MiB).
func (a *keyArena) wasteful() bool { return a.garbage >= 1<<20 && a.garbage*2 > len(a.buf) }

// compact moves the keys refs name to a new arena of just their size and updates refs.
func (a *keyArena) compact(refs func(move func(*keyRef))) {
	fresh := keyArena{buf: make([]byte, 0, len(a.buf)-a.garbage)}
	refs(func(k *keyRef) {
		if k.size() == 0 {
			return
		}
		old := a.buf[k.off : int(k.off)+k.size()]
		*k = keyRef{off: uint32(len(fresh.buf)), startLen: k.startLen, endLen: k.endLen}
		fresh.buf = append(fresh.buf, old...)
	})
	*a = fresh
}

// nodeNames numbers the node names records are attached to, so a record holds a 4 B number, not
// a string (a pointer the collector follows). Number 0 is no node. A name's number is freed when
// its last record leaves it (the DB's list of that node empties) and reused, so nodes coming
// and going under new names for months do not grow the table.
type nodeNames struct {
	names []string // by number; names[0] is ""
	num   map[string]uint32
	free  []uint32
}

// ref returns name's number, giving it one if it has none.
func (n *nodeNames) ref(name string) uint32 {
	if name == "" {
		return 0
	}
	if i, ok := n.num[name]; ok {
		return i
	}
	if n.num == nil {
		n.num, n.names = make(map[string]uint32), []string{""}
	}
	var i uint32
	if k := len(n.free); k > 0 {
		i, n.free = n.free[k-1], n.free[:k-1]
		n.names[i] = name
	} else {
		i = uint32(len(n.names))
		n.names = append(n.names, name)
	}
	n.num[name] = i
	return i
}

// name returns number i's name ("" for 0).
func (n *nodeNames) name(i uint32) string {
	if i == 0 {
		return ""
	}
	return n.names[i]
}

// drop frees name's number; no record may still hold it.
func (n *nodeNames) drop(name string) {
	if i, ok := n.num[name]; ok {
		delete(n.num, name)
		n.names[i] = ""
		n.free = append(n.free, i)
	}
}

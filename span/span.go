package span

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// tablePrefix starts every table key.
const tablePrefix = 't'

// tableKeyLen is the length of a table's start key: the prefix and 8 bytes of table ID.
const tableKeyLen = 9

// TableStartKey returns t<id>, the first key of a table.
func TableStartKey(id int64) []byte {
	k := make([]byte, tableKeyLen)
	putTableKey(k, id)
	return k
}

// TableSpan returns the whole key range of a table.
func TableSpan(id int64) heartbeatpb.TableSpan {
	return heartbeatpb.TableSpan{TableId: id, StartKey: TableStartKey(id), EndKey: TableStartKey(id + 1)}
}

// KeyArena builds whole-table spans whose keys share memory: keys come from blocks of 64 KiB
// rather than one allocation each (a 9-byte key took a 16-byte slot), and the span of table
// t+1 built right after t's starts at the very bytes t's ends at. A restore that finds a
// million tables absent built two keys a table, 28 MB of the maintainer's heap; from an arena
// they are 9 MB. The keys must never be written to (no key is: spans are values), and a block
// stays alive while any of its keys does. The zero value is ready to use.
type KeyArena struct {
	block   []byte
	lastID  int64
	lastEnd []byte // the end key of the last span built, nil before the first
}

// TableSpan returns the whole key range of table id, as the package-level TableSpan does.
func (a *KeyArena) TableSpan(id int64) heartbeatpb.TableSpan {
	start := a.lastEnd
	if start == nil || id != a.lastID+1 {
		start = a.key(id)
	}
	end := a.key(id + 1)
	a.lastID, a.lastEnd = id, end
	return heartbeatpb.TableSpan{TableId: id, StartKey: start, EndKey: end}
}

// arenaBlock is the size of a KeyArena's blocks: 7,281 keys.
const arenaBlock = 64 << 10

func (a *KeyArena) key(id int64) []byte {
	if len(a.block) < tableKeyLen {
		a.block = make([]byte, arenaBlock)
	}
	k := a.block[:tableKeyLen:tableKeyLen] // capped: an append to a key cannot reach its neighbour
	a.block = a.block[tableKeyLen:]
	putTableKey(k, id)
	return k
}

// ValidTableID reports whether id names a table: one whose key range an int64 can end.
func ValidTableID(id int64) bool { return id >= 0 && id != 1<<63-1 }

// InTable reports whether s is a non-empty range inside its own table. It builds no keys: a
// restore checks a million reported spans with it.
func InTable(s heartbeatpb.TableSpan) bool {
	if !ValidTableID(s.TableId) {
		return false
	}
	var lo, hi [tableKeyLen]byte
	putTableKey(lo[:], s.TableId)
	putTableKey(hi[:], s.TableId+1)
	return bytes.Compare(s.StartKey, s.EndKey) < 0 && bytes.Compare(s.StartKey, lo[:]) >= 0 &&
		bytes.Compare(s.EndKey, hi[:]) <= 0
}

// IsWholeTable reports whether s is exactly its table's whole range, without building keys.
func IsWholeTable(s heartbeatpb.TableSpan) bool {
	if !ValidTableID(s.TableId) {
		return false
	}
	var lo, hi [tableKeyLen]byte
	putTableKey(lo[:], s.TableId)
	putTableKey(hi[:], s.TableId+1)
	return bytes.Equal(s.StartKey, lo[:]) && bytes.Equal(s.EndKey, hi[:])
}

func putTableKey(k []byte, id int64) {
	k[0] = tablePrefix
	binary.BigEndian.PutUint64(k[1:], uint64(id))
}

// Key is a span in a comparable form, for use as a map key.
type Key struct {
	Table      int64
	Start, End string
}

// KeyOf returns the comparable form of s.
func KeyOf(s heartbeatpb.TableSpan) Key {
	return Key{Table: s.TableId, Start: string(s.StartKey), End: string(s.EndKey)}
}

// Span turns k back into a TableSpan.
func (k Key) Span() heartbeatpb.TableSpan {
	return heartbeatpb.TableSpan{TableId: k.Table, StartKey: []byte(k.Start), EndKey: []byte(k.End)}
}

// String prints the span for logs: table ID and hex keys.
func (k Key) String() string {
	return fmt.Sprintf("%d[%x,%x)", k.Table, k.Start, k.End)
}

// String prints s for logs.
func String(s heartbeatpb.TableSpan) string { return KeyOf(s).String() }

// Validate reports why s is not a well-formed span of its table, or nil.
func Validate(s heartbeatpb.TableSpan) error {
	if !ValidTableID(s.TableId) {
		return fmt.Errorf("span: table id %d out of range", s.TableId)
	}
	t := TableSpan(s.TableId)
	if bytes.Compare(s.StartKey, s.EndKey) >= 0 {
		return fmt.Errorf("span: %s: start key not below end key", String(s))
	}
	if bytes.Compare(s.StartKey, t.StartKey) < 0 || bytes.Compare(s.EndKey, t.EndKey) > 0 {
		return fmt.Errorf("span: %s: outside table %d", String(s), s.TableId)
	}
	return nil
}

// Compare orders spans by table, then start key, then end key.
func Compare(a, b heartbeatpb.TableSpan) int {
	if a.TableId != b.TableId {
		if a.TableId < b.TableId {
			return -1
		}
		return 1
	}
	if c := bytes.Compare(a.StartKey, b.StartKey); c != 0 {
		return c
	}
	return bytes.Compare(a.EndKey, b.EndKey)
}

// Equal reports whether a and b are the same range of the same table.
func Equal(a, b heartbeatpb.TableSpan) bool { return Compare(a, b) == 0 }

// Overlap reports whether a and b share at least one key.
func Overlap(a, b heartbeatpb.TableSpan) bool {
	return a.TableId == b.TableId &&
		bytes.Compare(a.StartKey, b.EndKey) < 0 && bytes.Compare(b.StartKey, a.EndKey) < 0
}

// Contains reports whether outer holds every key of inner.
func Contains(outer, inner heartbeatpb.TableSpan) bool {
	return outer.TableId == inner.TableId &&
		bytes.Compare(outer.StartKey, inner.StartKey) <= 0 && bytes.Compare(inner.EndKey, outer.EndKey) <= 0
}

// Adjacent reports whether a ends exactly where b starts, in the same table.
func Adjacent(a, b heartbeatpb.TableSpan) bool {
	return a.TableId == b.TableId && bytes.Equal(a.EndKey, b.StartKey)
}

package bootstrap

import (
	"math/bits"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// idFilter is a one-hash Bloom filter over the dispatcher IDs journaled operators name. A restore
// checks every one of a million reported dispatchers against those few thousand IDs; a hash-map
// lookup each was 7% of it, nearly always answering "not named". The filter answers "no" for
// all but about one in 32 of those from a table small enough to stay in cache, and a "maybe"
// goes on to the map.
type idFilter struct {
	words []uint64
	shift uint // 64 minus log2 of the table's size in bits
}

// newIDFilter builds the filter of ids' keys, about 32 bits per ID.
func newIDFilter[V any](ids map[heartbeatpb.DispatcherID]V) idFilter {
	logBits := max(bits.Len(uint(len(ids))*32), 6) // a power of two >= 32 per ID, a word at least
	f := idFilter{words: make([]uint64, 1<<(logBits-6)), shift: uint(64 - logBits)}
	for id := range ids {
		b := f.bit(id)
		f.words[b/64] |= 1 << (b % 64)
	}
	return f
}

// mayHold reports false only for an ID the filter was not built from.
func (f idFilter) mayHold(id heartbeatpb.DispatcherID) bool {
	if f.words == nil {
		return false
	}
	b := f.bit(id)
	return f.words[b/64]&(1<<(b%64)) != 0
}

// bit hashes id to a bit of the table: both halves mixed by odd multipliers, the high bits kept.
func (f idFilter) bit(id heartbeatpb.DispatcherID) uint64 {
	h := (id.Hi*0x9e3779b97f4a7c15 ^ id.Lo) * 0xbf58476d1ce4e5b9
	return h >> f.shift
}

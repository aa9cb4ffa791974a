package maintainer

import "github.com/tidemark/tidemark/heartbeatpb"

// idIndex maps the dispatcher IDs of bound spans to their records. A maintainer mints IDs as
// (epoch, counter), so the IDs in use come in long runs of consecutive counters; the index
// keeps them in blocks of idBlockSize consecutive counters, found through a small map. A Go map
// keyed by the whole ID put every entry at a random place in a table of ~30 MB at a million
// spans: a cache and TLB miss per insert and per lookup, a fifth of a restore's time. Here a
// run of IDs shares a block (64 bytes of span IDs), the block map has one entry per 16 IDs, and
// the whole index is about 6 bytes per ID. IDs a node made up, scattered, cost a block each:
// bounded by the spans they bind, and a block is 72 bytes; so are the stragglers of a run whose
// other spans moved away (new IDs) since. (A node mirror keeps a Go map: a node holds every
// third or tenth ID of a run, which would leave its blocks mostly empty.)
type idIndex struct {
	blocks map[idBlockKey]int32 // index into slab
	slab   []idBlock
	free   []int32 // emptied blocks of slab, reused before it grows
	n      int
}

const (
	idBlockBits = 4
	idBlockSize = 1 << idBlockBits
)

// idBlockKey names a block: the epoch and the counter without its low bits.
type idBlockKey struct{ hi, lo uint64 }

type idBlock struct {
	sids [idBlockSize]spanID
	used uint16 // bit i: sids[i] is set
}

func newIDIndex(capacity int) idIndex {
	blocks := capacity/idBlockSize + 1
	return idIndex{blocks: make(map[idBlockKey]int32, blocks), slab: make([]idBlock, 0, blocks)}
}

func splitID(id heartbeatpb.DispatcherID) (idBlockKey, uint) {
	return idBlockKey{id.Hi, id.Lo >> idBlockBits}, uint(id.Lo & (idBlockSize - 1))
}

// get returns the span bound to id.
func (x *idIndex) get(id heartbeatpb.DispatcherID) (spanID, bool) {
	k, i := splitID(id)
	b, ok := x.blocks[k]
	if !ok || x.slab[b].used&(1<<i) == 0 {
		return 0, false
	}
	return x.slab[b].sids[i], true
}

// put binds id to sid, replacing what it was bound to.
func (x *idIndex) put(id heartbeatpb.DispatcherID, sid spanID) {
	k, i := splitID(id)
	b, ok := x.blocks[k]
	if !ok {
		if n := len(x.free); n > 0 {
			b, x.free = x.free[n-1], x.free[:n-1]
		} else {
			b = int32(len(x.slab))
			x.slab = append(x.slab, idBlock{})
		}
		x.blocks[k] = b
	}
	blk := &x.slab[b]
	if blk.used&(1<<i) == 0 {
		x.n++
	}
	blk.used |= 1 << i
	blk.sids[i] = sid
}

// del unbinds id; an emptied block goes back for reuse.
func (x *idIndex) del(id heartbeatpb.DispatcherID) {
	k, i := splitID(id)
	b, ok := x.blocks[k]
	if !ok || x.slab[b].used&(1<<i) == 0 {
		return
	}
	blk := &x.slab[b]
	blk.used &^= 1 << i
	x.n--
	if blk.used == 0 {
		*blk = idBlock{}
		delete(x.blocks, k)
		x.free = append(x.free, b)
	}
}

// len is the number of bound IDs.
func (x *idIndex) len() int { return x.n }

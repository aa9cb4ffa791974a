package dispatchermanager

import (
	"github.com/tidemark/tidemark/heartbeatpb"
)

// DefaultChunkBytes is the budget of one bootstrap answer or listing piece when Config leaves
// ChunkBytes zero: far below the transport's 4 MiB target per envelope, and large enough that
// a million dispatchers take about 65 pieces (a status is about 60 bytes on the wire).
const DefaultChunkBytes = 1 << 20

// itemOverhead bounds what a repeated message field adds around one item (its tag and a length
// varint of up to 4 bytes), so a piece cut by size stays within its budget.
const itemOverhead = 5

// cutter splits a sequence of items into pieces of at most budget bytes each (an item larger
// than the budget gets a piece of its own). It only counts: the caller slices its lists at the
// cut points.
type cutter struct {
	budget int
	used   int
	cuts   []int // the piece ends, as item positions over all lists in order
	seen   int
}

// add counts one item of size bytes and starts a new piece first when it would not fit.
func (c *cutter) add(size int) {
	size += itemOverhead
	if c.used > 0 && c.used+size > c.budget {
		c.cuts = append(c.cuts, c.seen)
		c.used = 0
	}
	c.used += size
	c.seen++
}

// pieces returns the ranges [lo, hi) of item positions of each piece; at least one, empty when
// there are no items.
func (c *cutter) pieces() [][2]int {
	out := make([][2]int, 0, len(c.cuts)+1)
	lo := 0
	for _, hi := range c.cuts {
		out = append(out, [2]int{lo, hi})
		lo = hi
	}
	return append(out, [2]int{lo, c.seen})
}

// window returns the part of a list that starts at position off (over all lists) and falls in
// the piece [lo, hi).
func window[T any](list []T, off int, piece [2]int) []T {
	lo, hi := max(piece[0]-off, 0), min(piece[1]-off, len(list))
	if lo >= hi {
		return nil
	}
	return list[lo:hi]
}

// chunkBootstrap cuts a bootstrap answer into pieces of at most budget bytes: dispatchers,
// then journal entries, then merge entries, each list sliced where the budget runs out. Every
// piece carries the checkpoint and the request ID; pieces are numbered when there are several.
func chunkBootstrap(resp *heartbeatpb.MaintainerBootstrapResponse, budget int) []*heartbeatpb.MaintainerBootstrapResponse {
	c := cutter{budget: budget}
	for i := range resp.Dispatchers {
		c.add(resp.Dispatchers[i].Size())
	}
	for i := range resp.Operators {
		c.add(resp.Operators[i].Size())
	}
	for i := range resp.MergeOperators {
		c.add(resp.MergeOperators[i].Size())
	}
	pieces := c.pieces()
	if len(pieces) == 1 {
		return []*heartbeatpb.MaintainerBootstrapResponse{resp}
	}
	out := make([]*heartbeatpb.MaintainerBootstrapResponse, len(pieces))
	ops, merges := len(resp.Dispatchers), len(resp.Dispatchers)+len(resp.Operators)
	for i, p := range pieces {
		out[i] = &heartbeatpb.MaintainerBootstrapResponse{
			Dispatchers:    window(resp.Dispatchers, 0, p),
			Operators:      window(resp.Operators, ops, p),
			MergeOperators: window(resp.MergeOperators, merges, p),
			CheckpointTs:   resp.CheckpointTs,
			RequestId:      resp.RequestId,
			Chunk:          &heartbeatpb.Chunk{Index: uint32(i), Total: uint32(len(pieces))},
		}
	}
	return out
}

// chunkHeartbeat cuts a heartbeat whose statuses exceed budget bytes. The statuses are spread
// over the pieces; the last piece carries everything else (journal, rejections, watermarks,
// digest, periodic), so the maintainer checks the digest only against the whole. A full
// listing's pieces are numbered (Chunk) and put back together before the maintainer acts on
// any of them, as a listing replaces its mirror of the node. The pieces of any other heartbeat
// are ordinary heartbeats: statuses are news one at a time, and the pieces but the last carry no
// digest, so nothing is compared before the last one is in.
func chunkHeartbeat(req *heartbeatpb.HeartBeatRequest, budget int) []*heartbeatpb.HeartBeatRequest {
	c := cutter{budget: budget}
	for i := range req.Statuses {
		c.add(req.Statuses[i].Size())
	}
	pieces := c.pieces()
	if len(pieces) == 1 {
		return []*heartbeatpb.HeartBeatRequest{req}
	}
	out := make([]*heartbeatpb.HeartBeatRequest, len(pieces))
	for i, p := range pieces {
		piece := &heartbeatpb.HeartBeatRequest{Statuses: window(req.Statuses, 0, p), Full: req.Full}
		if i == len(pieces)-1 {
			piece.Journal, piece.Rejections, piece.Watermarks = req.Journal, req.Rejections, req.Watermarks
			piece.Digest, piece.Periodic = req.Digest, req.Periodic
		}
		if req.Full {
			piece.Chunk = &heartbeatpb.Chunk{Index: uint32(i), Total: uint32(len(pieces))}
		}
		out[i] = piece
	}
	return out
}

package sim

import (
	"github.com/tidemark/tidemark/heartbeatpb"
)

// chunkFault is a scripted fault on the pieces of answers that nodes send (bootstrap answers
// and full listings cut by ChunkBytes): the next count pieces of the kind of body are dropped,
// sent twice, or held back so that the piece after them arrives first.
type chunkFault struct {
	what  string // drop, dup, reorder
	body  string // bootstrap, listing, any
	index int    // only pieces of this index; -1 any
	count int
}

// chunkFault arms a fault for the next count pieces of body whose index is index (-1: any).
func (c faulter) chunkFault(what, body string, index, count int) {
	c.chunkFaults = append(c.chunkFaults, &chunkFault{what: what, body: body, index: index, count: count})
}

// applies reports whether the fault takes this piece. Body "statuses" takes whole heartbeats
// that carry statuses instead: losing one makes the node's digest mismatch, so the maintainer
// asks for its listing.
func (f *chunkFault) applies(env *heartbeatpb.Envelope, ch *heartbeatpb.Chunk) bool {
	if f.body == "statuses" {
		hb := env.GetHeartbeat()
		return f.count > 0 && ch == nil && hb != nil && !hb.Full && len(hb.Statuses) > 0
	}
	if f.count == 0 || ch == nil || (f.index >= 0 && int(ch.Index) != f.index) {
		return false
	}
	switch f.body {
	case "bootstrap":
		return env.GetBootstrapResponse() != nil
	case "listing":
		return env.GetHeartbeat() != nil
	}
	return true
}

// chunkFaulted applies an armed chunk fault to env, if one takes it, and reports whether it
// did (then env's delivery is done).
func (c wire) chunkFaulted(env *heartbeatpb.Envelope) bool {
	ch := env.GetBootstrapResponse().GetChunk()
	if ch == nil {
		ch = env.GetHeartbeat().GetChunk()
	}
	for _, f := range c.chunkFaults {
		if !f.applies(env, ch) {
			continue
		}
		f.count--
		c.counter["chunk-"+f.what]++
		c.trace.add(c.now, "chunk fault: "+f.what, env)
		switch f.what {
		case "drop":
		case "dup":
			// Both copies at once: before the pieces that follow, which go with some delay.
			c.net.push(inflight{at: c.now, env: env})
			c.net.push(inflight{at: c.now, env: env})
		case "reorder":
			// Later than any piece sent in the same Ready, which goes within MaxDelay.
			c.net.push(inflight{at: c.now.Add(c.cfg.MaxDelay + c.cfg.Tick), env: env})
		}
		return true
	}
	return false
}

// chunkFaultsLeft reports armed faults that found no piece to take.
func (c faulter) chunkFaultsLeft() int {
	left := 0
	for _, f := range c.chunkFaults {
		left += f.count
	}
	return left
}

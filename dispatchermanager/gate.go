package dispatchermanager

import (
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// Limits of the gate that holds envelopes of an epoch etcd has not confirmed yet.
const (
	// maxHeld bounds the held envelopes. A real maintainer's message that a flood of forged ones
	// pushes out is resent on its throttle, so a small buffer only costs a resend.
	maxHeld = 64
	// holdTimeout drops a held envelope that etcd neither confirmed nor refuted (etcd
	// unreachable). A real maintainer resends; nothing is acted on without etcd's word.
	holdTimeout = 3 * time.Second
	// leaderQueryInterval rate-limits the leader reads the core asks its runner for, so a flood
	// of forged epochs costs etcd at most a few reads a second per node and changefeed.
	leaderQueryInterval = 200 * time.Millisecond
)

// LeaderQuery asks the runner for one linearizable read of the changefeed's election leader
// (Manager.LeaderQuery). The read starts after the core asked, so it sees every election that an
// envelope held by then could come from: an answer that does not confirm such an envelope proves
// that no maintainer of its epoch and sender existed when it arrived.
type LeaderQuery struct {
	ID uint64
}

// LeaderReply is the runner's answer to a LeaderQuery: etcd's leader (zero Epoch and empty
// Leader when nobody leads), or Err when the read failed, which confirms and refutes nothing.
type LeaderReply struct {
	Query  LeaderQuery
	Epoch  uint64
	Leader string
	Err    error
}

type heldEnvelope struct {
	env *heartbeatpb.Envelope
	at  time.Time
	// query: the first leader query handed out after it arrived; 0 while none was.
	query uint64
}

// gate is the part of the manager that decides whom to listen to: the registered nodes, and the
// envelopes whose epoch is above the one etcd confirmed, held until etcd confirms or refutes
// their epoch and sender. It never decides on a message's word alone.
type gate struct {
	// epoch and maintainer: the election leader as etcd last reported it, never a message.
	epoch      uint64
	maintainer string
	recv       *heartbeatpb.OrderFilter // the last envelope accepted per sender
	// registered is the node registry as the runner last reported it; nil until then, which
	// refuses everyone (a dropped request is resent once the registry arrives).
	registered map[string]bool
	held       []heldEnvelope
	dropped    uint64 // held envelopes dropped: refuted, expired or pushed out

	queryID   uint64    // last query handed out
	queryAt   time.Time // when it was handed out, for the rate limit
	queryOpen bool      // handed out and not answered
}

func (g *gate) setRegistered(ids []string) {
	g.registered = make(map[string]bool, len(ids))
	for _, id := range ids {
		g.registered[id] = true
	}
}

// hold keeps env until etcd says who leads; when full, the oldest goes.
func (g *gate) hold(env *heartbeatpb.Envelope, now time.Time) {
	if len(g.held) >= maxHeld {
		g.held = g.held[1:]
		g.dropped++
	}
	g.held = append(g.held, heldEnvelope{env: env, at: now})
}

// release sorts the held envelopes after etcd named epoch and leader. Those of exactly that
// epoch and sender are returned, oldest first, to be stepped. Those of a lower or equal epoch
// can never be confirmed and are dropped. Those of a higher epoch are dropped too when the answer
// is that of leader query refutes (not 0) and a query up to it was handed out after they arrived
// (the read saw no such maintainer); otherwise they stay, as the watch may lag a real new one.
func (g *gate) release(epoch uint64, leader string, refutes uint64) (confirmed []*heartbeatpb.Envelope, drops int) {
	kept := g.held[:0]
	for _, h := range g.held {
		switch {
		case epoch > 0 && h.env.Epoch == epoch && h.env.From == leader:
			confirmed = append(confirmed, h.env)
		case h.env.Epoch <= epoch, refutes > 0 && h.query > 0 && h.query <= refutes:
			drops++
		default:
			kept = append(kept, h)
		}
	}
	clear(g.held[len(kept):])
	g.held = kept
	g.dropped += uint64(drops)
	return confirmed, drops
}

// expire drops held envelopes older than holdTimeout.
func (g *gate) expire(now time.Time) int {
	kept := g.held[:0]
	for _, h := range g.held {
		if now.Sub(h.at) < holdTimeout {
			kept = append(kept, h)
		}
	}
	n := len(g.held) - len(kept)
	clear(g.held[len(kept):])
	g.held = kept
	g.dropped += uint64(n)
	return n
}

// query hands out a leader read when an envelope is held that no query was handed out for
// since it arrived, none is open, and the last one is at least leaderQueryInterval ago.
func (g *gate) query(now time.Time) (LeaderQuery, bool) {
	if len(g.held) == 0 || g.queryOpen {
		return LeaderQuery{}, false
	}
	if g.queryID > 0 && now.Sub(g.queryAt) < leaderQueryInterval {
		return LeaderQuery{}, false
	}
	uncovered := false
	for _, h := range g.held {
		uncovered = uncovered || h.query == 0
	}
	if !uncovered {
		return LeaderQuery{}, false
	}
	g.queryID++
	g.queryAt, g.queryOpen = now, true
	for i := range g.held {
		if g.held[i].query == 0 {
			g.held[i].query = g.queryID
		}
	}
	return LeaderQuery{ID: g.queryID}, true
}

// answered closes query q; it reports whether q is the open one (only its answer refutes).
func (g *gate) answered(q LeaderQuery) bool {
	if !g.queryOpen || q.ID != g.queryID {
		return false
	}
	g.queryOpen = false
	return true
}

// failed closes query q after its read failed: the envelopes it covered wait for the next.
func (g *gate) failed(q LeaderQuery) {
	if !g.answered(q) {
		return
	}
	for i := range g.held {
		if g.held[i].query == q.ID {
			g.held[i].query = 0
		}
	}
}

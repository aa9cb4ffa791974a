package server

import (
	"context"
	"time"

	"github.com/tidemark/tidemark/dispatchermanager"
	"github.com/tidemark/tidemark/etcdutil"
)

// leaderReadTimeout bounds the quick read of a changefeed's election leader that a dispatcher
// manager asks for when an envelope carries an epoch etcd has not confirmed yet. A read that
// fails confirms nothing; the watch, or a later read, decides.
const leaderReadTimeout = 500 * time.Millisecond

// leaderReader runs the dispatcher manager's leader queries (dispatchermanager.LeaderQuery) one
// at a time, off the loop's goroutine, and hands the answers back on replies. The core decides
// when to ask and rate-limits it; this only does the I/O.
type leaderReader struct {
	s       *Server
	cf      string
	replies chan dispatchermanager.LeaderReply // capacity 1: at most one read is open
	open    bool
	// pending: the last answer, kept while the lease guard forbids acting on it.
	pending *dispatchermanager.LeaderReply
}

func newLeaderReader(s *Server, cf string) *leaderReader {
	return &leaderReader{s: s, cf: cf, replies: make(chan dispatchermanager.LeaderReply, 1)}
}

// maybeStart starts the read the core asks for, if it asks and none is open. Called on the
// loop's goroutine after each turn.
func (r *leaderReader) maybeStart(ctx context.Context, m *dispatchermanager.Manager) {
	if r.open || r.pending != nil {
		return
	}
	q, ok := m.LeaderQuery(time.Now())
	if !ok {
		return
	}
	r.open = true
	go func() {
		rctx, cancel := context.WithTimeout(ctx, leaderReadTimeout)
		defer cancel()
		// A linearizable read (clientv3's default): it sees at least every election that any
		// envelope held by the query's time could come from.
		l, err := etcdutil.GetLeader(rctx, r.s.cli, r.s.keys, r.cf)
		r.replies <- dispatchermanager.LeaderReply{Query: q, Epoch: l.Epoch, Leader: l.Node, Err: err}
	}()
}

// received records an answer taken from replies.
func (r *leaderReader) received(rep dispatchermanager.LeaderReply) {
	r.open = false
	result := "ok"
	if rep.Err != nil {
		result = "error"
	}
	r.s.metrics.leaderReads.WithLabelValues(result).Inc()
	r.pending = &rep
}

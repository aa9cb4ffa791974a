package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/maintainer"
	"github.com/tidemark/tidemark/span"
)

// errResigned ends a maintainer term that handed its role over on an admin request.
var errResigned = errors.New("server: resigned on admin request")

// adminFeed connects one maintainer term to the admin queue in etcd: it follows the pending
// requests for the changefeed and the drained nodes, hands them to the core (or answers them
// itself: malformed spans, resign), and writes every answer back under the election guard.
type adminFeed struct {
	s     *Server
	cf    string
	log   *zap.Logger
	snaps <-chan etcdutil.AdminSnapshot
	// seen holds the requests of this term already handed over or answered, so a snapshot
	// repeating them (they stay until their result is written) does not execute them twice.
	seen   map[string]admin.Kind // request ID -> kind
	writer *adminWriter          // writes every answer, in the order given
	resign bool
	// held is the latest snapshot that arrived before the schedule was restored: requests wait
	// for the bootstrap (one pending across a failover is executed, not refused).
	held *etcdutil.AdminSnapshot
}

// startAdminFeed follows the admin queue and starts the term's result writer; both end with ctx.
func (s *Server) startAdminFeed(ctx context.Context, cf string, lead *etcdutil.Leadership, log *zap.Logger) (*adminFeed, error) {
	snaps, err := etcdutil.WatchAdmin(ctx, s.cli, s.keys, cf)
	if err != nil {
		return nil, err
	}
	w := newAdminWriter(lead, log, func(res etcdutil.AdminResult) {
		s.metrics.admin.WithLabelValues(string(res.Kind), string(res.Outcome)).Inc()
	})
	go w.run(ctx)
	return &adminFeed{s: s, cf: cf, log: log, snaps: snaps, seen: map[string]admin.Kind{}, writer: w}, nil
}

// apply hands the new requests of snap to m, and the drained set.
func (a *adminFeed) apply(snap etcdutil.AdminSnapshot, m *maintainer.Maintainer, now time.Time) {
	m.SetDrained(snap.Drained)
	m.SetUnhealthy(snap.Unhealthy)
	if !m.Bootstrapped() {
		a.held = &snap
		return
	}
	a.held = nil
	for _, key := range snap.Malformed {
		a.log.Warn("ignoring a malformed admin request; its lease removes it", zap.String("key", key))
	}
	for _, r := range snap.Requests {
		if _, done := a.seen[r.ID]; done {
			continue
		}
		a.seen[r.ID] = r.Kind
		a.log.Info("admin request", zap.String("request", r.ID), zap.Stringer("kind", r.Kind),
			zap.Strings("spans", r.Spans), zap.String("node", r.Node))
		if err := r.Validate(); err != nil {
			a.answer(r, admin.Refused, err.Error())
			continue
		}
		if r.Kind == admin.Resign {
			a.handleResign(r)
			continue
		}
		req := maintainer.AdminRequest{ID: r.ID, Kind: r.Kind, Node: r.Node, Pieces: r.Pieces}
		bad := ""
		for _, name := range r.Spans {
			n, err := span.ParseName(name)
			if err != nil {
				bad = err.Error()
				break
			}
			req.Spans = append(req.Spans, n)
		}
		if bad != "" {
			a.answer(r, admin.Refused, bad)
			continue
		}
		m.Admin(req, now)
	}
}

// handleResign accepts a resign when another live node can take the role over.
func (a *adminFeed) handleResign(r etcdutil.AdminRequest) {
	nodes, _ := a.s.nodes.Get()
	others := 0
	for id := range nodes {
		if id != a.s.nodeID {
			others++
		}
	}
	if others == 0 {
		a.answer(r, admin.Refused, fmt.Sprintf("node %s is the only live node; start another node to hand the maintainer role of %s to",
			a.s.nodeID, a.cf))
		return
	}
	a.answer(r, admin.Done, fmt.Sprintf("node %s resigned as maintainer of %s; one of the %d other nodes takes over",
		a.s.nodeID, a.cf, others))
	a.resign = true
}

func (a *adminFeed) answer(r etcdutil.AdminRequest, outcome admin.Outcome, msg string) {
	a.writer.add([]etcdutil.AdminResult{{ID: r.ID, Kind: r.Kind, Outcome: outcome, Message: msg}})
}

// flush hands the core's answers to the term's writer (the feed's own went to it as they were
// made), which writes them under the election guard without holding the loop. It returns
// ErrNotLeader once the writer found the term over, and errResigned once a resign's answer is
// written.
func (a *adminFeed) flush(ctx context.Context, m *maintainer.Maintainer) error {
	var answers []etcdutil.AdminResult
	for _, r := range m.TakeAdminResults() {
		answers = append(answers, etcdutil.AdminResult{ID: r.ID, Kind: a.seen[r.ID], Outcome: r.Outcome, Message: r.Message, Reason: r.Reason})
	}
	a.writer.add(answers)
	if err := a.writer.failed(); err != nil {
		return err
	}
	if a.resign {
		if err := a.writer.wait(ctx); err != nil {
			return err
		}
		return errResigned
	}
	return nil
}

// termOps is what the ops tooling adds to one maintainer term: the query channel of the HTTP
// API, the admin feed, and the takeover and bootstrap metrics.
type termOps struct {
	s      *Server
	cf     string
	handle *termHandle
	end    func()
	cancel context.CancelFunc
	admin  *adminFeed
	snaps  <-chan etcdutil.AdminSnapshot
	// elected is when the election was won; the term's milestones are logged with the time
	// since (since_elected), which is how an operator sees where a failover's time went.
	elected     time.Time
	booted      bool
	replicating bool // every span was seen replicating with no operator in flight
	log         *zap.Logger
}

// beginTermOps sets up a term's ops tooling; close ends it.
func (s *Server) beginTermOps(ctx context.Context, cf string, lead *etcdutil.Leadership, elected time.Time, log *zap.Logger) (*termOps, error) {
	tctx, cancel := context.WithCancel(ctx)
	admin, err := s.startAdminFeed(tctx, cf, lead, log)
	if err != nil {
		cancel()
		return nil, err
	}
	// A published status from a lower epoch means an earlier maintainer ran: this is a failover.
	if prev, err := etcdutil.GetStatus(tctx, s.cli, s.keys, cf); err == nil && prev.Epoch != 0 && prev.Epoch < lead.Epoch {
		s.metrics.failovers.WithLabelValues(cf).Inc()
	}
	h, end := s.terms.begin(cf, lead.Epoch)
	return &termOps{s: s, cf: cf, handle: h, end: end, cancel: cancel, admin: admin, snaps: admin.snaps,
		elected: elected, log: log}, nil
}

// close ends the term's ops tooling. Answers still being written get a moment to land: a
// request whose answer is lost stays queued and the next maintainer executes it again.
func (t *termOps) close() {
	t.end()
	ctx, cancel := context.WithTimeout(context.Background(), adminDrainTimeout)
	_ = t.admin.writer.wait(ctx) // a lost term or the timeout: the answers are left to the next term
	cancel()
	t.cancel()
}

// queries is the channel of HTTP API queries the loop serves.
func (t *termOps) queries() <-chan func(*maintainer.Maintainer) { return t.handle.queries }

// onAdmin takes one admin snapshot; a closed channel (term ending) is ignored from then on.
func (t *termOps) onAdmin(snap etcdutil.AdminSnapshot, ok bool, m *maintainer.Maintainer) {
	if !ok {
		t.snaps = nil
		return
	}
	t.admin.apply(snap, m, time.Now())
}

// afterFlush writes admin answers and notes the term's milestones. publishNow asks the loop to
// publish its status at once: the first status of a bootstrapped term tells ctl and tests that
// this node maintains the changefeed, and the first one with every span replicating tells them
// the failover is over, without waiting up to a publish interval for either.
func (t *termOps) afterFlush(ctx context.Context, m *maintainer.Maintainer) (publishNow bool, err error) {
	if err := t.admin.flush(ctx, m); err != nil {
		return false, err
	}
	if !t.booted && m.Bootstrapped() {
		t.booted = true
		since := time.Since(t.elected)
		t.s.metrics.bootstrap.WithLabelValues(t.cf).Observe(since.Seconds())
		t.log.Info("maintainer bootstrapped", zap.Duration("since_elected", since.Round(time.Millisecond)))
		if held := t.admin.held; held != nil {
			t.admin.apply(*held, m, time.Now())
		}
		publishNow = true
	}
	if t.booted && !t.replicating && m.Settled() {
		t.replicating = true
		t.log.Info("every span replicating", zap.Duration("since_elected", time.Since(t.elected).Round(time.Millisecond)),
			zap.Int("spans", m.Status().Spans["replicating"]))
		publishNow = true
	}
	return publishNow, nil
}

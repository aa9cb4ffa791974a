package maintainer

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

// AdminRequest is one admin request handed to the core by its runner.
type AdminRequest struct {
	ID     string
	Kind   admin.Kind // move, split, merge or drain
	Spans  []span.Name
	Node   string // destination of a move, node of a drain
	Pieces int    // pieces of a split; 0 = the changefeed's
}

// AdminResult is the answer to one admin request.
type AdminResult struct {
	ID      string
	Outcome admin.Outcome
	Message string       // the facts, in words
	Reason  admin.Reason // the fact a client may add advice to; "" when none
}

// Admin takes one admin request. Its result comes out of TakeAdminResults, at once for a
// refusal and once the cluster is as asked otherwise.
func (m *Maintainer) Admin(req AdminRequest, now time.Time) {
	m.now = now
	if !m.bootstrapped {
		m.admin.refuse(req, "the maintainer of %s is still bootstrapping; retry in a few seconds", m.cfg.Changefeed)
		return
	}
	m.admin.take(req, now)
}

// TakeAdminResults returns the results produced since the last call.
func (m *Maintainer) TakeAdminResults() []AdminResult {
	out := m.admin.results
	m.admin.results = nil
	return out
}

// admin runs admin requests: it checks them against the span DB and the nodes, starts their
// operators through the operator runner, and answers each from what the span DB shows once its
// operators have all finished (done when observed).
type adminQueue struct {
	cfg   *Config
	log   *zap.Logger
	nodes *nodeSet
	ops   *opRunner
	// waiting holds moves that passed every check but found no free operator slot; they are
	// retried at the start of every tick, before the schedulers take the slots (admin priority).
	waiting []AdminRequest
	pending []adminOp
	drains  []pendingDrain
	results []AdminResult
}

// adminOp is an admin request whose operators are in flight: one type per kind of request.
type adminOp interface {
	base() *adminBase
	// spans lists the span records the request reads when it settles.
	spans() []spanID
	// settle answers the request once its operators have all finished, or starts its next
	// step (again).
	settle(a *adminQueue, now time.Time) (o admin.Outcome, msg string, again bool)
}

// adminBase is what every in-flight admin request has.
type adminBase struct {
	id   string
	name string // the span(s) as the request named them
	ops  []heartbeatpb.OperatorID
}

func (b *adminBase) base() *adminBase { return b }

func (a *adminQueue) db() *spanDB { return a.ops.db }

// holding returns the span records that in-flight requests still read, so their tombstones
// must stay.
func (a *adminQueue) holding() map[spanID]bool {
	out := map[spanID]bool{}
	for _, p := range a.pending {
		for _, sid := range p.spans() {
			out[sid] = true
		}
	}
	return out
}

// take checks and starts one request of a bootstrapped maintainer.
func (a *adminQueue) take(req AdminRequest, now time.Time) {
	switch req.Kind {
	case admin.Move:
		a.move(req, now, false)
	case admin.Drain:
		a.drain(req)
	case admin.Split:
		a.split(req, now)
	case admin.Merge:
		a.merge(req, now)
	default:
		a.refuse(req, "unknown admin request kind %q", req.Kind)
	}
}

func (a *adminQueue) refuse(req AdminRequest, format string, args ...any) {
	a.answer(req.ID, admin.Refused, fmt.Sprintf(format, args...))
}

// refuseFor refuses with the reason a check found (see refusal).
func (a *adminQueue) refuseFor(req AdminRequest, r refusal) {
	a.answerWhy(req.ID, admin.Refused, r.msg, r.reason)
}

func (a *adminQueue) answer(id string, o admin.Outcome, msg string) { a.answerWhy(id, o, msg, "") }

func (a *adminQueue) answerWhy(id string, o admin.Outcome, msg string, why admin.Reason) {
	a.log.Info("admin request answered", zap.String("request", id), zap.Stringer("outcome", o), zap.String("message", msg),
		zap.Stringer("reason", why))
	a.results = append(a.results, AdminResult{ID: id, Outcome: o, Message: msg, Reason: why})
}

// refusal is why a check refuses a request: the facts, and the reason a client may advise on.
// The zero value means the check passed.
type refusal struct {
	msg    string
	reason admin.Reason
}

func (r refusal) ok() bool { return r.msg == "" }

// tick runs before the schedulers: waiting moves first (admin priority), then finished
// requests and drains are answered.
func (a *adminQueue) tick(now time.Time) {
	waiting := a.waiting
	a.waiting = nil
	for _, req := range waiting {
		a.move(req, now, true)
	}
	a.settle(now)
}

// settle answers requests whose operators have all finished, or starts their next step (a
// merge's Merge after its moves).
func (a *adminQueue) settle(now time.Time) {
	keep := a.pending[:0]
	for _, p := range a.pending {
		running := false
		for _, id := range p.base().ops {
			if _, ok := a.ops.ctl.Get(id); ok {
				running = true
			}
		}
		if running {
			keep = append(keep, p)
			continue
		}
		outcome, msg, again := p.settle(a, now)
		if again {
			keep = append(keep, p)
			continue
		}
		a.answer(p.base().id, outcome, msg)
	}
	a.pending = keep
}

// checkTarget returns why node cannot receive spans.
func (a *adminQueue) checkTarget(node string) refusal {
	n := a.nodes.get(node)
	switch {
	case n == nil:
		return refusal{fmt.Sprintf("node %s is not alive (not in the registry)", node), admin.NodeNotAlive}
	case n.state != nodeReady:
		return refusal{fmt.Sprintf("node %s is still bootstrapping; retry in a few seconds", node), ""}
	case a.nodes.drained[node]:
		return refusal{fmt.Sprintf("node %s is drained", node), admin.NodeDrained}
	case a.nodes.unhealthy[node]:
		return refusal{fmt.Sprintf("node %s is unhealthy (its sink is failing)", node), admin.NodeUnhealthy}
	}
	return refusal{}
}

// spanBusy returns why the span record cannot be changed by an admin request now.
func (a *adminQueue) spanBusy(name string, r *spanRecord) refusal {
	if r.op != noOp {
		kind, phase := "operator", ""
		if op, ok := a.ops.ctl.Get(r.op); ok {
			kind = op.Type().String()
			if p, ok := op.(operator.Phaser); ok {
				phase = ", phase " + p.Phase()
			}
		}
		return refusal{fmt.Sprintf("span %s has an operator in flight (%s %d.%d%s); retry when it finishes",
			name, kind, r.op.Epoch, r.op.Seq, phase), admin.SpanBusy}
	}
	if r.life != lifeReplicating {
		return refusal{fmt.Sprintf("span %s (%s) is %s, not served by any node; the scheduler will place it", name, modeName(r.mode), r.life), ""}
	}
	return refusal{}
}

func modeName(mode heartbeatpb.Mode) string {
	if mode == heartbeatpb.ModeRedo {
		return "redo"
	}
	return "default"
}

// resolve finds the span records (every mode) a typed name means, or says why none.
func (a *adminQueue) resolve(n span.Name) ([]spanID, refusal) {
	db := a.db()
	ids := db.byTable.get(n.Table)
	if len(ids) == 0 {
		return nil, refusal{fmt.Sprintf("unknown span %s: changefeed %s has no table %d", n, a.cfg.Changefeed, n.Table), ""}
	}
	want := n.Span()
	var exact, overlapping []spanID
	for _, sid := range ids {
		if span.Equal(db.spanOf(sid), want) {
			exact = append(exact, sid)
		} else if span.Overlap(db.spanOf(sid), want) {
			overlapping = append(overlapping, sid)
		}
	}
	if len(exact) > 0 {
		return exact, refusal{}
	}
	var names []string
	seen := map[string]bool{}
	for _, sid := range overlapping {
		s := span.FormatName(db.spanOf(sid))
		if !seen[s] {
			seen[s] = true
			names = append(names, s)
		}
	}
	sort.Strings(names)
	if len(names) > 3 {
		names = append(names[:3], fmt.Sprintf("and %d more", len(names)-3))
	}
	return nil, refusal{fmt.Sprintf("unknown span %s: table %d is split into other spans (%s)",
		n, n.Table, strings.Join(names, ", ")), admin.SpanRenamed}
}

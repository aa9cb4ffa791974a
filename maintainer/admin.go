package maintainer

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

// AdminKind is what an admin request asks of the maintainer.
type AdminKind int

const (
	// AdminMove moves one span (every mode of it) to a node.
	AdminMove AdminKind = iota + 1
	// AdminSplit splits one span into pieces.
	AdminSplit
	// AdminMerge merges adjacent spans of one table into one.
	AdminMerge
	// AdminDrain moves every span off a node and keeps new ones off it.
	AdminDrain
)

func (k AdminKind) String() string {
	switch k {
	case AdminMove:
		return "move"
	case AdminSplit:
		return "split"
	case AdminMerge:
		return "merge"
	case AdminDrain:
		return "drain"
	}
	return "unknown"
}

// AdminRequest is one admin request handed to the core by its runner.
type AdminRequest struct {
	ID     string
	Kind   AdminKind
	Spans  []span.Name
	Node   string // destination of a move, node of a drain
	Pieces int    // pieces of a split; 0 = the changefeed's
}

// AdminOutcome says how an admin request ended.
type AdminOutcome int

const (
	// AdminDone: the cluster is as asked.
	AdminDone AdminOutcome = iota
	// AdminRefused: checked and not executed; nothing changed.
	AdminRefused
	// AdminFailed: started, but the cluster did not end up as asked.
	AdminFailed
)

func (o AdminOutcome) String() string {
	return [...]string{"done", "refused", "failed"}[o]
}

// AdminResult is the answer to one admin request.
type AdminResult struct {
	ID      string
	Outcome AdminOutcome
	Message string
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
type admin struct {
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
	settle(a *admin, now time.Time) (o AdminOutcome, msg string, again bool)
}

// adminBase is what every in-flight admin request has.
type adminBase struct {
	id   string
	name string // the span(s) as the request named them
	ops  []heartbeatpb.OperatorID
}

func (b *adminBase) base() *adminBase { return b }

func (a *admin) db() *spanDB { return a.ops.db }

// holding returns the span records that in-flight requests still read, so their tombstones
// must stay.
func (a *admin) holding() map[spanID]bool {
	out := map[spanID]bool{}
	for _, p := range a.pending {
		for _, sid := range p.spans() {
			out[sid] = true
		}
	}
	return out
}

// take checks and starts one request of a bootstrapped maintainer.
func (a *admin) take(req AdminRequest, now time.Time) {
	switch req.Kind {
	case AdminMove:
		a.move(req, now, false)
	case AdminDrain:
		a.drain(req)
	case AdminSplit:
		a.split(req, now)
	case AdminMerge:
		a.merge(req, now)
	default:
		a.refuse(req, "unknown admin request kind %d", int(req.Kind))
	}
}

func (a *admin) refuse(req AdminRequest, format string, args ...any) {
	a.answer(req.ID, AdminRefused, fmt.Sprintf(format, args...))
}

func (a *admin) answer(id string, o AdminOutcome, msg string) {
	a.log.Info("admin request answered", zap.String("request", id), zap.Stringer("outcome", o), zap.String("message", msg))
	a.results = append(a.results, AdminResult{ID: id, Outcome: o, Message: msg})
}

// tick runs before the schedulers: waiting moves first (admin priority), then finished
// requests and drains are answered.
func (a *admin) tick(now time.Time) {
	waiting := a.waiting
	a.waiting = nil
	for _, req := range waiting {
		a.move(req, now, true)
	}
	a.settle(now)
}

// settle answers requests whose operators have all finished, or starts their next step (a
// merge's Merge after its moves).
func (a *admin) settle(now time.Time) {
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

// checkTarget returns why node cannot receive spans, or "".
func (a *admin) checkTarget(node string) string {
	n := a.nodes.get(node)
	switch {
	case n == nil:
		return fmt.Sprintf("node %s is not alive (not in the registry); list live nodes with `tidemark ctl nodes`", node)
	case n.state != nodeReady:
		return fmt.Sprintf("node %s is still bootstrapping; retry in a few seconds", node)
	case a.nodes.drained[node]:
		return fmt.Sprintf("node %s is drained; end the drain first with `tidemark ctl drain %s --cancel`", node, node)
	case a.nodes.unhealthy[node]:
		return fmt.Sprintf("node %s is unhealthy (its sink is failing; `tidemark ctl status` says why)", node)
	}
	return ""
}

// spanBusy returns why the span record cannot be changed by an admin request now, or "".
func (a *admin) spanBusy(name string, r *spanRecord) string {
	if r.op != noOp {
		kind, phase := "operator", ""
		if op, ok := a.ops.ctl.Get(r.op); ok {
			kind = op.Type().String()
			if p, ok := op.(operator.Phaser); ok {
				phase = ", phase " + p.Phase()
			}
		}
		return fmt.Sprintf("span %s has an operator in flight (%s %d.%d%s); retry when it finishes (see `tidemark ctl operators`)",
			name, kind, r.op.Epoch, r.op.Seq, phase)
	}
	if r.life != lifeReplicating {
		return fmt.Sprintf("span %s (%s) is %s, not served by any node; the scheduler will place it", name, modeName(r.mode), r.life)
	}
	return ""
}

func modeName(mode heartbeatpb.Mode) string {
	if mode == heartbeatpb.ModeRedo {
		return "redo"
	}
	return "default"
}

// resolve finds the span records (every mode) a typed name means, or says why none.
func (a *admin) resolve(n span.Name) ([]spanID, string) {
	db := a.db()
	ids := db.byTable[n.Table]
	if len(ids) == 0 {
		return nil, fmt.Sprintf("unknown span %s: changefeed %s has no table %d", n, a.cfg.Changefeed, n.Table)
	}
	want := n.Span()
	var exact, overlapping []spanID
	for _, sid := range ids {
		r := db.get(sid)
		if span.Equal(r.span, want) {
			exact = append(exact, sid)
		} else if span.Overlap(r.span, want) {
			overlapping = append(overlapping, sid)
		}
	}
	if len(exact) > 0 {
		return exact, ""
	}
	var names []string
	seen := map[string]bool{}
	for _, sid := range overlapping {
		s := span.FormatName(db.get(sid).span)
		if !seen[s] {
			seen[s] = true
			names = append(names, s)
		}
	}
	sort.Strings(names)
	if len(names) > 3 {
		names = append(names[:3], fmt.Sprintf("and %d more", len(names)-3))
	}
	return nil, fmt.Sprintf("unknown span %s: table %d is split into other spans (%s); name one exactly as `tidemark ctl spans --table %d` prints it",
		n, n.Table, strings.Join(names, ", "), n.Table)
}

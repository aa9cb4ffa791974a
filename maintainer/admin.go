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
	Spans  []SpanName
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

// adminState is the core's admin bookkeeping. The zero value is ready to use.
type adminState struct {
	drained map[string]bool
	// waiting holds moves that passed every check but found no free operator slot; they are
	// retried at the start of every tick, before the schedulers take the slots (admin priority).
	waiting []AdminRequest
	pending []*pendingOp
	drains  []pendingDrain
	results []AdminResult
}

// pendingOp is an admin move, split or merge whose operators are in flight. It is answered
// from what the span DB shows once they have all finished (done when observed).
type pendingOp struct {
	id   string
	kind AdminKind
	name string // the span(s) as the request named them
	ops  []heartbeatpb.OperatorID
	// move: the spans (every mode) and where they go
	sids       []spanID
	from, dest string
	// split: the pieces each mode must end up as
	children []heartbeatpb.TableSpan
	modes    []heartbeatpb.Mode
	// merge: per mode the run in key order; merging once the Merge operators are out
	runs    [][]spanID
	merged  heartbeatpb.TableSpan
	merging bool
}

// pendingDrain is a drain request waiting for its node to hold no spans.
type pendingDrain struct{ id, node string }

// Admin takes one admin request. Its result comes out of TakeAdminResults, at once for a
// refusal and once the cluster is as asked otherwise.
func (m *Maintainer) Admin(req AdminRequest, now time.Time) {
	m.now = now
	if !m.bootstrapped {
		m.adminRefuse(req, "the maintainer of %s is still bootstrapping; retry in a few seconds", m.cfg.Changefeed)
		return
	}
	switch req.Kind {
	case AdminMove:
		m.adminMove(req, now, false)
	case AdminDrain:
		m.adminDrain(req)
	case AdminSplit:
		m.adminSplit(req, now)
	case AdminMerge:
		m.adminMerge(req, now)
	default:
		m.adminRefuse(req, "unknown admin request kind %d", int(req.Kind))
	}
}

// TakeAdminResults returns the results produced since the last call.
func (m *Maintainer) TakeAdminResults() []AdminResult {
	out := m.admin.results
	m.admin.results = nil
	return out
}

// Bootstrapped reports whether the schedule has been restored.
func (m *Maintainer) Bootstrapped() bool { return m.bootstrapped }

func (m *Maintainer) adminRefuse(req AdminRequest, format string, args ...any) {
	m.adminAnswer(req.ID, AdminRefused, fmt.Sprintf(format, args...))
}

func (m *Maintainer) adminAnswer(id string, o AdminOutcome, msg string) {
	m.log.Info("admin request answered", zap.String("request", id), zap.Stringer("outcome", o), zap.String("message", msg))
	m.admin.results = append(m.admin.results, AdminResult{ID: id, Outcome: o, Message: msg})
}

// adminTick runs before the schedulers: waiting moves first (admin priority), then finished
// moves and drains are answered, then drained nodes are emptied further.
func (m *Maintainer) adminTick(now time.Time) {
	waiting := m.admin.waiting
	m.admin.waiting = nil
	for _, req := range waiting {
		m.adminMove(req, now, true)
	}
	m.settlePending(now)
	m.drainNodes(now)
	m.settleDrains()
}

// adminMove checks and starts a move. A retry (from the waiting list) answers nothing new when
// slots are still short: it waits again.
func (m *Maintainer) adminMove(req AdminRequest, now time.Time, retry bool) {
	if len(req.Spans) != 1 {
		m.adminRefuse(req, "a move names exactly one span, got %d", len(req.Spans))
		return
	}
	if msg := m.checkTarget(req.Node); msg != "" {
		m.adminRefuse(req, "%s", msg)
		return
	}
	name := req.Spans[0].String()
	sids, msg := m.resolveSpan(req.Spans[0])
	if msg != "" {
		m.adminRefuse(req, "%s", msg)
		return
	}
	var todo []spanID
	for _, sid := range sids {
		r := m.db.get(sid)
		if msg := m.spanBusy(name, r); msg != "" {
			m.adminRefuse(req, "%s", msg)
			return
		}
		if r.node != req.Node {
			todo = append(todo, sid)
		}
	}
	if len(todo) == 0 {
		m.adminAnswer(req.ID, AdminDone, fmt.Sprintf("span %s is already on node %s", name, req.Node))
		return
	}
	for _, sid := range todo {
		if !m.ctl.CanAdd(m.db.get(sid).node, req.Node) {
			if !retry {
				m.log.Info("admin move waits for a free operator slot", zap.String("request", req.ID))
			}
			m.admin.waiting = append(m.admin.waiting, req)
			return
		}
	}
	pm := &pendingOp{id: req.ID, kind: AdminMove, name: name, dest: req.Node, from: m.db.get(todo[0]).node}
	for _, sid := range todo {
		if !m.startMove(sid, req.Node, now) {
			// Checked above, so only a dispatcher held by a stray removal gets here.
			m.adminAnswer(req.ID, AdminFailed, fmt.Sprintf("span %s: a mode of it could not be moved (its dispatcher is held by another operator); retry", name))
			return
		}
		pm.sids = append(pm.sids, sid)
		pm.ops = append(pm.ops, m.db.get(sid).op)
	}
	m.admin.pending = append(m.admin.pending, pm)
}

// checkTarget returns why node cannot receive spans, or "".
func (m *Maintainer) checkTarget(node string) string {
	n := m.nodes[node]
	switch {
	case n == nil:
		return fmt.Sprintf("node %s is not alive (not in the registry); list live nodes with `tidemark ctl nodes`", node)
	case n.state != nodeReady:
		return fmt.Sprintf("node %s is still bootstrapping; retry in a few seconds", node)
	case m.admin.drained[node]:
		return fmt.Sprintf("node %s is drained; end the drain first with `tidemark ctl drain %s --cancel`", node, node)
	case m.health.unhealthy[node]:
		return fmt.Sprintf("node %s is unhealthy (its sink is failing; `tidemark ctl status` says why)", node)
	}
	return ""
}

// spanBusy returns why the span record cannot be changed by an admin request now, or "".
func (m *Maintainer) spanBusy(name string, r *spanRecord) string {
	if r.op != noOp {
		kind, phase := "operator", ""
		if op, ok := m.ctl.Get(r.op); ok {
			kind = op.Type().String()
			if p, ok := op.(operator.Phaser); ok {
				phase = ", phase " + p.Phase()
			}
		}
		return fmt.Sprintf("span %s has an operator in flight (%s %d.%d%s); retry when it finishes (see `tidemark ctl operators`)",
			name, kind, r.op.Epoch, r.op.Seq, phase)
	}
	if r.state != stateReplicating {
		return fmt.Sprintf("span %s (%s) is %s, not served by any node; the scheduler will place it", name, modeName(r.mode), r.state)
	}
	return ""
}

// settlePending answers admin operations whose operators have all finished, or starts their
// next step (a merge's Merge after its moves).
func (m *Maintainer) settlePending(now time.Time) {
	keep := m.admin.pending[:0]
	for _, p := range m.admin.pending {
		running := false
		for _, id := range p.ops {
			if _, ok := m.ctl.Get(id); ok {
				running = true
			}
		}
		if running {
			keep = append(keep, p)
			continue
		}
		var outcome AdminOutcome
		var msg string
		switch p.kind {
		case AdminMove:
			outcome, msg = m.settleMove(p)
		case AdminSplit:
			outcome, msg = m.settleSplit(p)
		case AdminMerge:
			var again bool
			if outcome, msg, again = m.settleMerge(p, now); again {
				keep = append(keep, p)
				continue
			}
		}
		m.adminAnswer(p.id, outcome, msg)
	}
	m.admin.pending = keep
}

func (m *Maintainer) settleMove(p *pendingOp) (AdminOutcome, string) {
	var wrong []string
	for _, sid := range p.sids {
		r := m.db.get(sid)
		if r.retired || r.state != stateReplicating || r.node != p.dest {
			where := "absent"
			switch {
			case r.retired:
				where = "gone (split, merged or its table removed)"
			case r.node != "":
				where = "on node " + r.node
			}
			wrong = append(wrong, fmt.Sprintf("%s is %s", modeName(r.mode), where))
		}
	}
	if len(wrong) > 0 {
		return AdminFailed, fmt.Sprintf("move of span %s to %s did not complete (%s): a node was lost or refused it; retry",
			p.name, p.dest, strings.Join(wrong, ", "))
	}
	return AdminDone, fmt.Sprintf("moved span %s from %s to %s", p.name, p.from, p.dest)
}

func modeName(mode heartbeatpb.Mode) string {
	if mode == heartbeatpb.ModeRedo {
		return "redo"
	}
	return "default"
}

// resolveSpan finds the span records (every mode) a typed name means, or says why none.
func (m *Maintainer) resolveSpan(n SpanName) ([]spanID, string) {
	ids := m.db.byTable[n.Table]
	if len(ids) == 0 {
		return nil, fmt.Sprintf("unknown span %s: changefeed %s has no table %d", n, m.cfg.Changefeed, n.Table)
	}
	want := n.Span()
	var exact, overlapping []spanID
	for _, sid := range ids {
		r := m.db.get(sid)
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
		s := FormatSpan(m.db.get(sid).span)
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

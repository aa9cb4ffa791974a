package maintainer

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// adminSplit splits every mode of one span into pieces, each on the node that serves it now
// (the balance scheduler spreads the pieces later).
func (m *Maintainer) adminSplit(req AdminRequest, now time.Time) {
	if len(req.Spans) != 1 {
		m.adminRefuse(req, "a split names exactly one span, got %d", len(req.Spans))
		return
	}
	name := req.Spans[0].String()
	sids, msg := m.resolveSpan(req.Spans[0])
	if msg != "" {
		m.adminRefuse(req, "%s", msg)
		return
	}
	pieces := req.Pieces
	if pieces == 0 {
		pieces = max(int(m.cfg.ChangefeedConfig.SplitPieces), defaultSplitPieces)
	}
	children, err := span.Split(m.db.get(sids[0]).span, pieces)
	if err != nil {
		m.adminRefuse(req, "span %s cannot be split into %d pieces: %v", name, pieces, err)
		return
	}
	for _, sid := range sids {
		r := m.db.get(sid)
		if msg := m.spanBusy(name, r); msg != "" {
			m.adminRefuse(req, "%s", msg)
			return
		}
		if !m.ctl.CanAdd(r.node) {
			m.adminRefuse(req, "node %s has no free operator slot; retry when `tidemark ctl operators` shows fewer", r.node)
			return
		}
	}
	p := &pendingOp{id: req.ID, kind: AdminSplit, name: name, children: children}
	for _, sid := range sids {
		r := m.db.get(sid)
		nodes := make([]string, len(children))
		for i := range nodes {
			nodes[i] = r.node
		}
		mode := r.mode
		if !m.startSplit(sid, children, nodes, now) {
			m.adminAnswer(req.ID, AdminFailed, fmt.Sprintf("span %s (%s) could not be split (its dispatcher is held by another operator); retry", name, modeName(mode)))
			return
		}
		p.modes = append(p.modes, mode)
		p.ops = append(p.ops, m.db.get(sid).op)
	}
	m.admin.pending = append(m.admin.pending, p)
}

func (m *Maintainer) settleSplit(p *pendingOp) (AdminOutcome, string) {
	names := make([]string, len(p.children))
	for i, c := range p.children {
		names[i] = FormatSpan(c)
		for _, mode := range p.modes {
			if _, ok := m.liveSpan(c, mode); !ok {
				return AdminFailed, fmt.Sprintf("split of span %s did not complete (piece %s of %s is missing): a node was lost or refused it; retry",
					p.name, names[i], modeName(mode))
			}
		}
	}
	return AdminDone, fmt.Sprintf("split span %s into %d spans: %s", p.name, len(names), strings.Join(names, " "))
}

// liveSpan finds the record of s in mode that is still in the schedule.
func (m *Maintainer) liveSpan(s heartbeatpb.TableSpan, mode heartbeatpb.Mode) (spanID, bool) {
	for _, sid := range m.db.byTable[s.TableId] {
		if r := m.db.get(sid); r.mode == mode && !r.retired && span.Equal(r.span, s) {
			return sid, true
		}
	}
	return 0, false
}

// adminMerge merges adjacent spans of one table (every mode). Spans on different nodes are
// first moved to the node holding most of them; the Merge follows once the moves are done.
func (m *Maintainer) adminMerge(req AdminRequest, now time.Time) {
	byMode := map[heartbeatpb.Mode][]spanID{}
	var names []string
	for _, n := range req.Spans {
		sids, msg := m.resolveSpan(n)
		if msg != "" {
			m.adminRefuse(req, "%s", msg)
			return
		}
		for _, sid := range sids {
			r := m.db.get(sid)
			byMode[r.mode] = append(byMode[r.mode], sid)
			if msg := m.spanBusy(n.String(), r); msg != "" {
				m.adminRefuse(req, "%s", msg)
				return
			}
		}
		names = append(names, n.String())
	}
	p := &pendingOp{id: req.ID, kind: AdminMerge, name: strings.Join(names, " ")}
	for _, mode := range []heartbeatpb.Mode{heartbeatpb.ModeDefault, heartbeatpb.ModeRedo} {
		run := byMode[mode]
		if len(run) == 0 {
			continue
		}
		sort.Slice(run, func(i, j int) bool { return span.Compare(m.db.get(run[i]).span, m.db.get(run[j]).span) < 0 })
		for i := 1; i < len(run); i++ {
			a, b := m.db.get(run[i-1]).span, m.db.get(run[i]).span
			if !span.Adjacent(a, b) {
				m.adminRefuse(req, "spans not adjacent: %s ends where %s does not start; merge names neighbouring spans of one table (see `tidemark ctl spans --table %d`)",
					FormatSpan(a), FormatSpan(b), a.TableId)
				return
			}
		}
		p.runs = append(p.runs, run)
	}
	if len(p.runs) == 0 || len(p.runs[0]) < 2 {
		m.adminRefuse(req, "a merge names at least two distinct spans")
		return
	}
	spans := make([]heartbeatpb.TableSpan, len(p.runs[0]))
	for i, sid := range p.runs[0] {
		spans[i] = m.db.get(sid).span
	}
	merged, err := span.Merge(spans)
	if err != nil {
		m.adminRefuse(req, "spans cannot be merged: %v", err)
		return
	}
	p.merged = merged
	if msg := m.mergeStep(p, now); msg != "" {
		m.adminAnswer(req.ID, AdminFailed, msg)
		return
	}
	m.admin.pending = append(m.admin.pending, p)
}

// mergeStep starts, per mode, the moves that gather the run on one node; once every mode is
// gathered, it starts the Merges. It returns why it cannot, or "".
func (m *Maintainer) mergeStep(p *pendingOp, now time.Time) string {
	p.ops = p.ops[:0]
	targets := make([]string, len(p.runs))
	for i, run := range p.runs {
		count := map[string]int{}
		for _, sid := range run {
			count[m.db.get(sid).node]++
		}
		for n, c := range count {
			if m.checkTarget(n) == "" && (targets[i] == "" || c > count[targets[i]] || (c == count[targets[i]] && n < targets[i])) {
				targets[i] = n
			}
		}
		if targets[i] == "" {
			return fmt.Sprintf("merge of %s: no node holding its spans can take the merged span (drained, unhealthy or not ready)", p.name)
		}
		for _, sid := range run {
			if r := m.db.get(sid); r.node != targets[i] {
				if !m.startMove(sid, targets[i], now) {
					return fmt.Sprintf("merge of %s: span %s could not be moved to %s to merge there; retry", p.name, FormatSpan(r.span), targets[i])
				}
				p.ops = append(p.ops, r.op)
			}
		}
	}
	if len(p.ops) > 0 {
		return "" // gathering; settleMerge calls again once the moves are done
	}
	for i, run := range p.runs {
		if !m.startMerge(run, targets[i], now) {
			return fmt.Sprintf("merge of %s: the Merge could not start (operator limits); retry", p.name)
		}
		p.ops = append(p.ops, m.db.get(run[0]).op)
	}
	p.merging = true
	return ""
}

// settleMerge answers a finished merge, or starts its next step (again = true).
func (m *Maintainer) settleMerge(p *pendingOp, now time.Time) (AdminOutcome, string, bool) {
	if p.merging {
		for _, run := range p.runs {
			if _, ok := m.liveSpan(p.merged, m.db.get(run[0]).mode); !ok {
				return AdminFailed, fmt.Sprintf("merge of %s did not complete (no merged span): a node was lost or refused it; retry", p.name), false
			}
		}
		return AdminDone, fmt.Sprintf("merged %s into span %s", p.name, FormatSpan(p.merged)), false
	}
	for _, run := range p.runs {
		for _, sid := range run {
			if r := m.db.get(sid); r.retired || r.state != stateReplicating || r.op != noOp {
				return AdminFailed, fmt.Sprintf("merge of %s: span %s changed while it was gathered on one node; retry", p.name, FormatSpan(r.span)), false
			}
		}
	}
	if msg := m.mergeStep(p, now); msg != "" {
		return AdminFailed, msg, false
	}
	return 0, "", true
}

package maintainer

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// adminMergeOp is an admin merge in flight: per mode the run in key order, first gathered on
// one node by Moves, then merged (merging) once the moves are done.
type adminMergeOp struct {
	adminBase
	runs    [][]spanID
	merged  heartbeatpb.TableSpan
	merging bool
}

// merge merges adjacent spans of one table (every mode). Spans on different nodes are first
// moved to the node holding most of them; the Merge follows once the moves are done.
func (a *adminQueue) merge(req AdminRequest, now time.Time) {
	db := a.db()
	byMode := map[heartbeatpb.Mode][]spanID{}
	var names []string
	for _, n := range req.Spans {
		sids, why := a.resolve(n)
		if !why.ok() {
			a.refuseFor(req, why)
			return
		}
		for _, sid := range sids {
			r := db.get(sid)
			byMode[r.mode] = append(byMode[r.mode], sid)
			if why := a.spanBusy(n.String(), r); !why.ok() {
				a.refuseFor(req, why)
				return
			}
		}
		names = append(names, n.String())
	}
	p := &adminMergeOp{adminBase: adminBase{id: req.ID, name: strings.Join(names, " ")}}
	for _, mode := range []heartbeatpb.Mode{heartbeatpb.ModeDefault, heartbeatpb.ModeRedo} {
		run := byMode[mode]
		if len(run) == 0 {
			continue
		}
		sort.Slice(run, func(i, j int) bool { return span.Compare(db.spanOf(run[i]), db.spanOf(run[j])) < 0 })
		for i := 1; i < len(run); i++ {
			x, y := db.spanOf(run[i-1]), db.spanOf(run[i])
			if !span.Adjacent(x, y) {
				a.refuseFor(req, refusal{fmt.Sprintf("spans not adjacent: %s ends where %s does not start; a merge names neighbouring spans of one table",
					span.FormatName(x), span.FormatName(y)), admin.NotAdjacent})
				return
			}
		}
		p.runs = append(p.runs, run)
	}
	if len(p.runs) == 0 || len(p.runs[0]) < 2 {
		a.refuse(req, "a merge names at least two distinct spans")
		return
	}
	spans := make([]heartbeatpb.TableSpan, len(p.runs[0]))
	for i, sid := range p.runs[0] {
		spans[i] = db.spanOf(sid)
	}
	merged, err := span.Merge(spans)
	if err != nil {
		a.refuse(req, "spans cannot be merged: %v", err)
		return
	}
	p.merged = merged
	if msg := p.step(a, now); msg != "" {
		a.answer(req.ID, admin.Failed, msg)
		return
	}
	a.pending = append(a.pending, p)
}

// step starts, per mode, the moves that gather the run on one node; once every mode is
// gathered, it starts the Merges. It returns why it cannot, or "".
func (p *adminMergeOp) step(a *adminQueue, now time.Time) string {
	db := a.db()
	p.ops = p.ops[:0]
	targets := make([]string, len(p.runs))
	for i, run := range p.runs {
		targets[i], _ = gatherTarget(schedView{db: db, nodes: a.nodes}, run)
		if targets[i] == "" {
			return fmt.Sprintf("merge of %s: no node holding its spans can take the merged span (drained, unhealthy or not ready)", p.name)
		}
		for _, sid := range run {
			if r := db.get(sid); db.nodeOf(sid) != targets[i] {
				if !a.ops.move(sid, targets[i], now) {
					return fmt.Sprintf("merge of %s: span %s could not be moved to %s to merge there; retry", p.name, span.FormatName(db.spanOf(sid)), targets[i])
				}
				p.ops = append(p.ops, r.op)
			}
		}
	}
	if len(p.ops) > 0 {
		return "" // gathering; settle calls again once the moves are done
	}
	for i, run := range p.runs {
		if !a.ops.merge(run, targets[i], now) {
			return fmt.Sprintf("merge of %s: the Merge could not start (operator limits); retry", p.name)
		}
		p.ops = append(p.ops, db.get(run[0]).op)
	}
	p.merging = true
	return ""
}

func (p *adminMergeOp) spans() []spanID {
	var out []spanID
	for _, run := range p.runs {
		out = append(out, run...)
	}
	return out
}

// settle answers a finished merge, or starts its next step (again).
func (p *adminMergeOp) settle(a *adminQueue, now time.Time) (admin.Outcome, string, bool) {
	db := a.db()
	if p.merging {
		for _, run := range p.runs {
			if _, ok := db.live(p.merged, db.get(run[0]).mode); !ok {
				return admin.Failed, fmt.Sprintf("merge of %s did not complete (no merged span): a node was lost or refused it; retry", p.name), false
			}
		}
		return admin.Done, fmt.Sprintf("merged %s into span %s", p.name, span.FormatName(p.merged)), false
	}
	for _, run := range p.runs {
		for _, sid := range run {
			if r := db.get(sid); !r.free() {
				return admin.Failed, fmt.Sprintf("merge of %s: span %s changed while it was gathered on one node; retry", p.name, span.FormatName(db.spanOf(sid))), false
			}
		}
	}
	if msg := p.step(a, now); msg != "" {
		return admin.Failed, msg, false
	}
	return "", "", true
}

package maintainer

import (
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/admin"
)

// adminMoveOp is an admin move in flight: the spans (every mode) and where they go.
type adminMoveOp struct {
	adminBase
	sids       []spanID
	from, dest string
}

// move checks and starts a move. A retry (from the waiting list) answers nothing new when
// slots are still short: it waits again.
func (a *adminQueue) move(req AdminRequest, now time.Time, retry bool) {
	if len(req.Spans) != 1 {
		a.refuse(req, "a move names exactly one span, got %d", len(req.Spans))
		return
	}
	if r := a.checkTarget(req.Node); !r.ok() {
		a.refuseFor(req, r)
		return
	}
	db := a.db()
	name := req.Spans[0].String()
	sids, why := a.resolve(req.Spans[0])
	if !why.ok() {
		a.refuseFor(req, why)
		return
	}
	var todo []spanID
	for _, sid := range sids {
		r := db.get(sid)
		if why := a.spanBusy(name, r); !why.ok() {
			a.refuseFor(req, why)
			return
		}
		if db.nodeOf(sid) != req.Node {
			todo = append(todo, sid)
		}
	}
	if len(todo) == 0 {
		a.answer(req.ID, admin.Done, fmt.Sprintf("span %s is already on node %s", name, req.Node))
		return
	}
	for _, sid := range todo {
		if !a.ops.ctl.CanAdd(db.nodeOf(sid), req.Node) {
			if !retry {
				a.log.Info("admin move waits for a free operator slot", zap.String("request", req.ID))
			}
			a.waiting = append(a.waiting, req)
			return
		}
	}
	p := &adminMoveOp{adminBase: adminBase{id: req.ID, name: name}, dest: req.Node, from: db.nodeOf(todo[0])}
	for _, sid := range todo {
		if !a.ops.move(sid, req.Node, now) {
			// Checked above, so only a dispatcher held by a stray removal gets here.
			a.answer(req.ID, admin.Failed, fmt.Sprintf("span %s: a mode of it could not be moved (its dispatcher is held by another operator); retry", name))
			return
		}
		p.sids = append(p.sids, sid)
		p.ops = append(p.ops, db.get(sid).op)
	}
	a.pending = append(a.pending, p)
}

func (p *adminMoveOp) spans() []spanID { return p.sids }

func (p *adminMoveOp) settle(a *adminQueue, _ time.Time) (admin.Outcome, string, bool) {
	var wrong []string
	for _, sid := range p.sids {
		r := a.db().get(sid)
		if r.life != lifeReplicating || a.db().nodeOf(sid) != p.dest {
			where := "absent"
			switch {
			case r.retired():
				where = "gone (split, merged or its table removed)"
			case a.db().nodeOf(sid) != "":
				where = "on node " + a.db().nodeOf(sid)
			}
			wrong = append(wrong, fmt.Sprintf("%s is %s", modeName(r.mode), where))
		}
	}
	if len(wrong) > 0 {
		return admin.Failed, fmt.Sprintf("move of span %s to %s did not complete (%s): a node was lost or refused it; retry",
			p.name, p.dest, strings.Join(wrong, ", ")), false
	}
	return admin.Done, fmt.Sprintf("moved span %s from %s to %s", p.name, p.from, p.dest), false
}

package maintainer

import (
	"fmt"
	"strings"
	"time"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// adminSplitOp is an admin split in flight: the pieces each mode must end up as.
type adminSplitOp struct {
	adminBase
	children []heartbeatpb.TableSpan
	modes    []heartbeatpb.Mode
}

// split splits every mode of one span into pieces, each on the node that serves it now (the
// balance scheduler spreads the pieces later).
func (a *adminQueue) split(req AdminRequest, now time.Time) {
	if len(req.Spans) != 1 {
		a.refuse(req, "a split names exactly one span, got %d", len(req.Spans))
		return
	}
	db := a.db()
	name := req.Spans[0].String()
	sids, why := a.resolve(req.Spans[0])
	if !why.ok() {
		a.refuseFor(req, why)
		return
	}
	pieces := req.Pieces
	if pieces == 0 {
		pieces = max(int(a.cfg.ChangefeedConfig.SplitPieces), defaultSplitPieces)
	}
	children, err := span.Split(db.spanOf(sids[0]), pieces)
	if err != nil {
		a.refuse(req, "span %s cannot be split into %d pieces: %v", name, pieces, err)
		return
	}
	for _, sid := range sids {
		r := db.get(sid)
		if why := a.spanBusy(name, r); !why.ok() {
			a.refuseFor(req, why)
			return
		}
		if !a.ops.ctl.CanAdd(db.nodeOf(sid)) {
			a.refuseFor(req, refusal{fmt.Sprintf("node %s has no free operator slot", db.nodeOf(sid)), admin.NoOperatorSlot})
			return
		}
	}
	p := &adminSplitOp{adminBase: adminBase{id: req.ID, name: name}, children: children}
	for _, sid := range sids {
		r := db.get(sid)
		nodes := make([]string, len(children))
		for i := range nodes {
			nodes[i] = db.nodeOf(sid)
		}
		mode := r.mode
		if !a.ops.split(sid, children, nodes, now) {
			a.answer(req.ID, admin.Failed, fmt.Sprintf("span %s (%s) could not be split (its dispatcher is held by another operator); retry", name, modeName(mode)))
			return
		}
		p.modes = append(p.modes, mode)
		p.ops = append(p.ops, db.get(sid).op)
	}
	a.pending = append(a.pending, p)
}

func (p *adminSplitOp) spans() []spanID { return nil } // it reads its pieces by key range

func (p *adminSplitOp) settle(a *adminQueue, _ time.Time) (admin.Outcome, string, bool) {
	names := make([]string, len(p.children))
	for i, c := range p.children {
		names[i] = span.FormatName(c)
		for _, mode := range p.modes {
			if _, ok := a.db().live(c, mode); !ok {
				return admin.Failed, fmt.Sprintf("split of span %s did not complete (piece %s of %s is missing): a node was lost or refused it; retry",
					p.name, names[i], modeName(mode)), false
			}
		}
	}
	return admin.Done, fmt.Sprintf("split span %s into %d spans: %s", p.name, len(names), strings.Join(names, " ")), false
}

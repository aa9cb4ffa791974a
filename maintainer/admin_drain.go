package maintainer

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/admin"
)

// pendingDrain is a drain request waiting for its node to hold no spans.
type pendingDrain struct{ id, node string }

// SetDrained replaces the set of drained nodes (the runner follows it in etcd): their spans are
// moved off, and nothing new is placed on them.
func (m *Maintainer) SetDrained(nodes []string) { m.nodes.drained = stringSet(nodes) }

// Drained returns the drained nodes, sorted.
func (m *Maintainer) Drained() []string { return sortedSet(m.nodes.drained) }

// SetUnhealthy replaces the set of unhealthy nodes (the runner follows their marks in etcd):
// their spans are moved off, and nothing new is placed on them, until the mark goes.
func (m *Maintainer) SetUnhealthy(nodes []string) { m.nodes.unhealthy = stringSet(nodes) }

// drain starts draining a node; it is answered when the node holds no span. The drain
// scheduler (drain.go) moves the spans.
func (a *adminQueue) drain(req AdminRequest) {
	if a.nodes.get(req.Node) == nil {
		a.refuseFor(req, refusal{fmt.Sprintf("node %s is not alive (not in the registry)", req.Node), admin.NodeNotAlive})
		return
	}
	others := 0
	for id := range a.nodes.live {
		if id != req.Node && a.nodes.target(id) {
			others++
		}
	}
	if others == 0 {
		a.refuse(req, "node %s is the only node left to serve spans; start another node before draining it", req.Node)
		return
	}
	mapSet(&a.nodes.drained, req.Node, true)
	a.drains = append(a.drains, pendingDrain{id: req.ID, node: req.Node})
	a.log.Info("draining node", zap.String("node", req.Node), zap.Int("spans", a.db().nodeLoad(req.Node)))
}

// settleDrains answers drains whose node is empty, gone, or no longer drained.
func (a *adminQueue) settleDrains() {
	keep := a.drains[:0]
	for _, d := range a.drains {
		switch {
		case a.nodes.get(d.node) == nil:
			a.answer(d.id, admin.Done, fmt.Sprintf("node %s left the cluster; it holds no spans of %s", d.node, a.cfg.Changefeed))
		case !a.nodes.drained[d.node]:
			a.answer(d.id, admin.Failed, fmt.Sprintf("the drain of node %s ended before it was empty", d.node))
		case a.db().nodeLoad(d.node) == 0:
			a.answer(d.id, admin.Done, fmt.Sprintf("node %s holds no spans of %s", d.node, a.cfg.Changefeed))
		default:
			keep = append(keep, d)
		}
	}
	a.drains = keep
}

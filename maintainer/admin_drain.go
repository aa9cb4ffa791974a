package maintainer

import (
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"
)

// SetDrained replaces the set of drained nodes (the runner follows it in etcd): their spans are
// moved off, and nothing new is placed on them.
func (m *Maintainer) SetDrained(nodes []string) {
	m.admin.drained = make(map[string]bool, len(nodes))
	for _, n := range nodes {
		m.admin.drained[n] = true
	}
}

// Drained returns the drained nodes, sorted.
func (m *Maintainer) Drained() []string {
	out := make([]string, 0, len(m.admin.drained))
	for n := range m.admin.drained {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// IsDrained reports whether node is drained.
func (m *Maintainer) IsDrained(node string) bool { return m.admin.drained[node] }

// adminDrain starts draining a node; it is answered when the node holds no span.
func (m *Maintainer) adminDrain(req AdminRequest) {
	if m.nodes[req.Node] == nil {
		m.adminRefuse(req, "node %s is not alive (not in the registry); list live nodes with `tidemark ctl nodes`", req.Node)
		return
	}
	others := 0
	for id, n := range m.nodes {
		if id != req.Node && n.state == nodeReady && !m.avoided(id) {
			others++
		}
	}
	if others == 0 {
		m.adminRefuse(req, "node %s is the only node left to serve spans; start another node before draining it", req.Node)
		return
	}
	if m.admin.drained == nil {
		m.admin.drained = make(map[string]bool)
	}
	m.admin.drained[req.Node] = true
	m.admin.drains = append(m.admin.drains, pendingDrain{id: req.ID, node: req.Node})
	m.log.Info("draining node", zap.String("node", req.Node), zap.Int("spans", m.db.nodeLoad(req.Node)))
}

// settleDrains answers drains whose node is empty, gone, or no longer drained.
func (m *Maintainer) settleDrains() {
	keep := m.admin.drains[:0]
	for _, d := range m.admin.drains {
		switch {
		case m.nodes[d.node] == nil:
			m.adminAnswer(d.id, AdminDone, fmt.Sprintf("node %s left the cluster; it holds no spans of %s", d.node, m.cfg.Changefeed))
		case !m.admin.drained[d.node]:
			m.adminAnswer(d.id, AdminFailed, fmt.Sprintf("the drain of node %s ended before it was empty", d.node))
		case m.db.nodeLoad(d.node) == 0:
			m.adminAnswer(d.id, AdminDone, fmt.Sprintf("node %s holds no spans of %s", d.node, m.cfg.Changefeed))
		default:
			keep = append(keep, d)
		}
	}
	m.admin.drains = keep
}

// drainNodes moves replicating spans off drained and unhealthy nodes onto the least-loaded
// ready nodes that are neither, within the operator limits and the round bound. An unhealthy
// node's spans leave the same way an operator's drain empties a node: by Move, whose remove half
// takes the final checkpoint the node did persist.
func (m *Maintainer) drainNodes(now time.Time) {
	avoided := m.avoidedNodes()
	if len(avoided) == 0 {
		return
	}
	targets := m.nodeLoads() // nodeLoads leaves avoided nodes out
	if len(targets) == 0 {
		return
	}
	budget := m.cfg.ScheduleBatch
	for _, node := range avoided {
		if n := m.nodes[node]; n == nil || n.state != nodeReady {
			continue
		}
		for _, sid := range m.db.onNode(node) {
			if budget == 0 {
				return
			}
			r := m.db.get(sid)
			if r.state != stateReplicating || r.op != noOp {
				continue
			}
			best := 0
			for i := range targets {
				if targets[i].spans < targets[best].spans {
					best = i
				}
			}
			if !m.ctl.CanAdd(node, targets[best].node) || !m.startMove(sid, targets[best].node, now) {
				break // limits: the next tick continues
			}
			targets[best].spans++
			budget--
		}
	}
}

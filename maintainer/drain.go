package maintainer

import "time"

// drain moves free replicating spans off drained and unhealthy nodes onto the least-loaded
// nodes that may receive spans, within the operator limits and the round bound. An unhealthy
// node's spans leave the same way an operator's drain empties a node: by Move, whose remove half
// takes the final checkpoint the node did persist.
func drain(v schedView, act starter, now time.Time) {
	avoided := v.nodes.avoidedNodes()
	if len(avoided) == 0 {
		return
	}
	targets := v.nodeLoads() // avoided nodes are not among them
	if len(targets) == 0 {
		return
	}
	budget := v.cfg.ScheduleBatch
	for _, node := range avoided {
		if !v.nodes.ready(node) {
			continue
		}
		for _, sid := range v.db.onNode(node) {
			if budget == 0 {
				return
			}
			if !v.db.get(sid).free() {
				continue
			}
			best := 0
			for i := range targets {
				if targets[i].spans < targets[best].spans {
					best = i
				}
			}
			if !v.ctl.CanAdd(node, targets[best].node) || !act.move(sid, targets[best].node, now) {
				break // limits: the next tick continues
			}
			targets[best].spans++
			budget--
		}
	}
}

package maintainer

import (
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
)

// InFlight describes every in-flight operator with the spans it holds, by operator ID: what an
// invariant checker needs to verify that no two operators overlap (I4).
func (m *Maintainer) InFlight() []operator.Info { return m.ctl.List(m.now) }

// ModeSpans counts, per mode ("default", "redo") and ready node, the spans the node serves or is
// about to serve: the figures the balance scheduler evens out. One pass over the nodes' spans.
func (m *Maintainer) ModeSpans() map[string]map[string]int {
	out := map[string]map[string]int{"default": {}, "redo": {}}
	for id, n := range m.nodes.live {
		if n.state != nodeReady {
			continue
		}
		out["default"][id], out["redo"][id] = 0, 0
		for _, sid := range m.db.byNode[id] {
			mode := "default"
			if m.db.get(sid).mode == heartbeatpb.ModeRedo {
				mode = "redo"
			}
			out[mode][id]++
		}
	}
	return out
}

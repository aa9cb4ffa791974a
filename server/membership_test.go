package server

import (
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/maintainer"
)

// bootstrapTargets lists the nodes the maintainer's next Ready asks to bootstrap, then advances.
func bootstrapTargets(m *maintainer.Maintainer) []string {
	var out []string
	for _, env := range m.Ready().Messages {
		if env.GetBootstrapRequest() != nil {
			out = append(out, env.To)
		}
	}
	m.Advance()
	return out
}

// An evicted node re-registers within milliseconds; the node watch may show the delete and the
// new key as one change. The new incarnation must still reach the core as a leave and a join.
func TestApplyMembershipNewIncarnationLeavesAndJoins(t *testing.T) {
	t0 := time.Unix(1000, 0)
	nodes := map[string]etcdutil.NodeInfo{"n1": {ID: "n1", Incarnation: 1}, "n2": {ID: "n2", Incarnation: 1}}
	m, err := maintainer.New(maintainer.Config{ClusterID: "c1", Changefeed: "cf", SelfNode: "n1", Epoch: 3,
		ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf", StartTs: 100}, Logger: zap.NewNop()},
		liveNodeIDs(nodes), t0)
	if err != nil {
		t.Fatal(err)
	}
	known := incarnations(nodes)
	if got := bootstrapTargets(m); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Fatalf("first bootstrap requests to %v", got)
	}
	known = applyMembership(m, known, nodes, t0)
	if got := bootstrapTargets(m); len(got) != 0 {
		t.Fatalf("unchanged membership asked %v again", got)
	}
	nodes["n2"] = etcdutil.NodeInfo{ID: "n2", Incarnation: 2}
	known = applyMembership(m, known, nodes, t0)
	if got := bootstrapTargets(m); !slices.Equal(got, []string{"n2"}) {
		t.Fatalf("after n2 re-registered, bootstrap requests to %v, want [n2] (left and joined)", got)
	}
	delete(nodes, "n2")
	applyMembership(m, known, nodes, t0)
	if st := m.Status(); len(st.Nodes) != 1 {
		t.Fatalf("after n2 left, nodes = %v", st.Nodes)
	}
}

package maintainer

import (
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// TestDefaultLimitsFillTwoSurvivors: after a failover on 3 nodes, the two survivors re-create
// the dead node's third of the spans, and re-creation runs at in-flight operators over their
// round trip (a tick of each side). With the default limits the two of them must be able to
// hold most of the overall budget in flight: at 1,000 a node they held 2,000 of the 10,000,
// and re-placing a third of 100,000 spans took 9 s of a 15.5 s failover (tests/bench).
func TestDefaultLimitsFillTwoSurvivors(t *testing.T) {
	const tables = 20_000
	cfg := Config{ClusterID: "c", Changefeed: "cf", SelfNode: "n1", Epoch: 9,
		ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf", StartTs: 100}}
	cfg.ChangefeedConfig.Tables = make([]heartbeatpb.TableConfig, tables)
	for i := range cfg.ChangefeedConfig.Tables {
		cfg.ChangefeedConfig.Tables[i].TableId = int64(i + 1)
	}
	nodes := []string{"n1", "n2"}
	m, err := New(cfg, nodes, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		env := &heartbeatpb.Envelope{ClusterId: "c", Changefeed: "cf", From: n, To: "n1", Epoch: 9,
			Incarnation: 1, Seq: 1, Body: &heartbeatpb.Envelope_BootstrapResponse{
				BootstrapResponse: &heartbeatpb.MaintainerBootstrapResponse{}}}
		if err := m.Step(env, t0); err != nil {
			t.Fatal(err)
		}
	}
	// No node answers: every round adds until a limit holds.
	now := t0
	for i := 0; i < 20; i++ {
		now = now.Add(100 * time.Millisecond)
		m.Tick(now)
		m.Ready()
		m.Advance()
		// The first round alone must fill most of the budget: with a batch of 2,000 a round,
		// re-placing a third of 1,000,000 spans waited on 170 rounds and took 34 s of failover.
		if first := m.ctl.Len(); i == 0 && first < m.cfg.MaxOperators*8/10 {
			t.Fatalf("the first round started %d operators, want at least %d of the overall %d",
				first, m.cfg.MaxOperators*8/10, m.cfg.MaxOperators)
		}
	}
	perNode := make(map[string]int)
	for n := range m.db.byNode {
		perNode[n] = len(m.db.byNode[n])
	}
	want := m.cfg.MaxOperators * 8 / 10
	if got := m.ctl.Len(); got < want {
		t.Fatalf("two nodes hold %d operators in flight (by node %v), want at least %d of the overall %d",
			got, perNode, want, m.cfg.MaxOperators)
	}
	if got := m.ctl.Len(); got > m.cfg.MaxOperators {
		t.Fatalf("%d operators in flight, over the overall limit %d", got, m.cfg.MaxOperators)
	}
	for n, k := range perNode {
		if k > m.cfg.MaxOperatorsPerNode {
			t.Fatalf("node %s holds %d adding spans, over the per-node limit %d", n, k, m.cfg.MaxOperatorsPerNode)
		}
	}
}

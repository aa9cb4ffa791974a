package maintainer

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// maxEnvelope is the bound of issue 12: no envelope over 4 MiB, whatever the changefeed size.
const maxEnvelope = 4 << 20

// envelopeSizes records the largest envelope of each body kind the maintainer sent.
type envelopeSizes map[string]int

func (s envelopeSizes) take(t *testing.T, rd Ready) {
	t.Helper()
	for _, env := range rd.Messages {
		kind := fmt.Sprintf("%T", env.Body)
		if n := env.Size(); n > s[kind] {
			s[kind] = n
		}
	}
}

func (s envelopeSizes) check(t *testing.T, want ...string) {
	t.Helper()
	for _, k := range want {
		if _, ok := s[k]; !ok {
			t.Errorf("no %s envelope was sent: the test does not cover it", k)
		}
	}
	for k, n := range s {
		t.Logf("largest %s: %d bytes", k, n)
		if n > maxEnvelope {
			t.Errorf("%s envelope of %d bytes: over %d", k, n, maxEnvelope)
		}
	}
}

// TestEnvelopesMillion runs a maintainer of a changefeed of 1,000,000 tables on three nodes,
// with the default limits, through bootstrap, placement rounds whose Adds the nodes confirm, a
// config change (pushed as bootstrap requests again) and a listing request, and checks that no
// envelope of any kind it sends is over 4 MiB.
func TestEnvelopesMillion(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a maintainer of a million tables: too slow under -short or -race")
	}
	const n = 1_000_000
	cfg := Config{ClusterID: "c", Changefeed: "cf", SelfNode: "n1", Epoch: 9,
		ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf", StartTs: 100}}
	cfg.ChangefeedConfig.Tables = make([]heartbeatpb.TableConfig, n)
	for i := range cfg.ChangefeedConfig.Tables {
		// Some tables carry their own load, as a sparse catalogue does.
		cfg.ChangefeedConfig.Tables[i] = heartbeatpb.TableConfig{TableId: int64(i + 1), Load: 10}
		if i%1000 == 0 {
			cfg.ChangefeedConfig.Tables[i].Load = 5000
		}
	}
	nodes := []string{"n1", "n2", "n3"}
	m, err := New(cfg, nodes, t0)
	if err != nil {
		t.Fatal(err)
	}
	sizes := envelopeSizes{}
	seq := map[string]uint64{}
	send := func(from string, body any) {
		t.Helper()
		seq[from]++
		env := &heartbeatpb.Envelope{ClusterId: "c", Changefeed: "cf", From: from, To: "n1", Epoch: 9,
			Incarnation: 1, Seq: seq[from]}
		switch b := body.(type) {
		case *heartbeatpb.MaintainerBootstrapResponse:
			env.Body = &heartbeatpb.Envelope_BootstrapResponse{BootstrapResponse: b}
		case *heartbeatpb.HeartBeatRequest:
			env.Body = &heartbeatpb.Envelope_Heartbeat{Heartbeat: b}
		}
		if err := m.Step(env, t0); err != nil {
			t.Fatalf("step %s from %s: %v", fmt.Sprintf("%T", env.Body), from, err)
		}
	}
	start := time.Now()
	rd := m.Ready()
	sizes.take(t, rd)
	m.Advance()
	for _, env := range rd.Messages {
		if req := env.GetBootstrapRequest(); req != nil {
			send(env.To, &heartbeatpb.MaintainerBootstrapResponse{RequestId: req.RequestId})
		}
	}
	// Placement rounds: each node confirms every Add it is sent, so operators finish and
	// heartbeat responses carry their acknowledgements.
	now := t0
	for round := 0; round < 6; round++ {
		now = now.Add(100 * time.Millisecond)
		m.Tick(now)
		rd := m.Ready()
		sizes.take(t, rd)
		m.Advance()
		for _, env := range rd.Messages {
			b := env.GetSchedule()
			if b == nil {
				continue
			}
			hb := &heartbeatpb.HeartBeatRequest{}
			for _, r := range b.Requests {
				if r.Action == heartbeatpb.ActionCreate {
					hb.Statuses = append(hb.Statuses, heartbeatpb.DispatcherStatus{Id: r.Config.Id, Span: r.Config.Span,
						Mode: r.Config.Mode, State: heartbeatpb.StateWorking, CheckpointTs: 100})
				}
			}
			send(env.To, hb)
		}
	}
	// A config change reaches every node as a bootstrap request; the table removed is one of
	// a range, so the catalogue gains a range.
	next := *cfg.ChangefeedConfig // the maintainer keeps only the catalogue at this size
	next.Tables = slices.Delete(slices.Clone(next.Tables), n/2, n/2+1)
	if err := m.UpdateConfig(&next, now); err != nil {
		t.Fatal(err)
	}
	m.out.listing["n2"], m.out.response["n2"] = true, true
	rd = m.Ready()
	sizes.take(t, rd)
	m.Advance()
	t.Logf("%d tables on %d nodes: %d spans replicating after the rounds (%.1fs)", n, len(nodes),
		m.db.counts[stateReplicating], time.Since(start).Seconds())
	sizes.check(t, "*heartbeatpb.Envelope_BootstrapRequest", "*heartbeatpb.Envelope_Schedule",
		"*heartbeatpb.Envelope_HeartbeatResponse")
}

package maintainer

import (
	"errors"
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

func testConfig() Config {
	return Config{ClusterID: "c1", Changefeed: "cf", SelfNode: "self", Epoch: 5,
		ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf", StartTs: 100,
			Tables: []heartbeatpb.TableConfig{{TableId: 1}}}}
}

func TestReadyRepeatsUntilAdvance(t *testing.T) {
	m, err := New(testConfig(), []string{"n1"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	first := m.Ready()
	second := m.Ready()
	if len(first.Messages) != 1 || len(second.Messages) != 1 || first.Messages[0] != second.Messages[0] {
		t.Fatalf("Ready changed before Advance: %v vs %v", first.Messages, second.Messages)
	}
	m.Advance()
	if rd := m.Ready(); len(rd.Messages) != 0 || rd.Checkpoint != 0 {
		t.Fatalf("Ready after Advance = %+v, want empty", rd)
	}
	m.Advance()
	m.Advance() // extra Advance calls are harmless
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := map[string]func(*Config){
		"no cluster":       func(c *Config) { c.ClusterID = "" },
		"no changefeed":    func(c *Config) { c.Changefeed = "" },
		"no self":          func(c *Config) { c.SelfNode = "" },
		"zero epoch":       func(c *Config) { c.Epoch = 0 },
		"nil config":       func(c *Config) { c.ChangefeedConfig = nil },
		"id mismatch":      func(c *Config) { c.ChangefeedConfig.Id = "other" },
		"negative timeout": func(c *Config) { c.BootstrapTimeout = -1 },
		"negative limit":   func(c *Config) { c.MaxOperators = -1 },
		"bad table":        func(c *Config) { c.ChangefeedConfig.Tables[0].TableId = -1 },
	}
	for name, mutate := range cases {
		cfg := testConfig()
		mutate(&cfg)
		if _, err := New(cfg, nil, t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
}

func TestMalformedInputChangesNothing(t *testing.T) {
	m, err := New(testConfig(), []string{"n1"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	before := m.Status()
	bad := &heartbeatpb.Envelope{ClusterId: "c1", Changefeed: "cf", From: "n1", To: "self", Epoch: 5, Seq: 1,
		Body: &heartbeatpb.Envelope_Heartbeat{Heartbeat: &heartbeatpb.HeartBeatRequest{
			Statuses: []heartbeatpb.DispatcherStatus{{State: 9}}}}}
	if err := m.Step(bad, t0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	// The bad envelope did not consume seq 1: a good one with the same seq is accepted.
	good := &heartbeatpb.Envelope{ClusterId: "c1", Changefeed: "cf", From: "n1", To: "self", Epoch: 5, Seq: 1,
		Body: &heartbeatpb.Envelope_BootstrapResponse{BootstrapResponse: &heartbeatpb.MaintainerBootstrapResponse{}}}
	if before.Bootstrapped {
		t.Fatal("bootstrapped before any answer")
	}
	if err := m.Step(good, t0); err != nil {
		t.Fatal(err)
	}
	if !m.Status().Bootstrapped {
		t.Fatal("good envelope with the seq of a refused one was dropped")
	}
}

// responseCheckpoint is the checkpoint the heartbeat response in rd tells its node.
func responseCheckpoint(t *testing.T, rd Ready) uint64 {
	t.Helper()
	for _, env := range rd.Messages {
		if r := env.GetHeartbeatResponse(); r != nil {
			return r.CheckpointTs
		}
	}
	t.Fatalf("no heartbeat response in %d messages", len(rd.Messages))
	return 0
}

// TestCheckpointNotPersistedIsAskedAgain: when the runner cannot store the checkpoint, the core
// must not count it as persisted (its status would show a checkpoint etcd lacks, which a
// successor then publishes lower) and must ask again. While a write is in flight no second one
// is asked for, and no message names the checkpoint being written: a node starts creates from
// what it is told, which must be in etcd whatever happens to the write.
func TestCheckpointNotPersistedIsAskedAgain(t *testing.T) {
	cfg := testConfig()
	cfg.PersistedCheckpoint = 100
	m, err := New(cfg, []string{"n1"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	m.Advance() // the bootstrap request went out
	answer := &heartbeatpb.Envelope{
		ClusterId: "c1", Changefeed: "cf", From: "n1", To: "self", Epoch: 5, Incarnation: 1, Seq: 1,
		Body: &heartbeatpb.Envelope_BootstrapResponse{BootstrapResponse: &heartbeatpb.MaintainerBootstrapResponse{
			Dispatchers: []heartbeatpb.DispatcherStatus{{
				Id: heartbeatpb.DispatcherID{Hi: 1, Lo: 1}, Span: span.TableSpan(1),
				State: heartbeatpb.StateWorking, CheckpointTs: 200,
			}},
		}},
	}
	if err := m.Step(answer, t0); err != nil {
		t.Fatal(err)
	}
	heartbeat := func(seq uint64) {
		t.Helper()
		if err := m.Step(&heartbeatpb.Envelope{
			ClusterId: "c1", Changefeed: "cf", From: "n1", To: "self", Epoch: 5, Incarnation: 1, Seq: seq,
			Body: &heartbeatpb.Envelope_Heartbeat{Heartbeat: &heartbeatpb.HeartBeatRequest{Periodic: true}},
		}, t0); err != nil {
			t.Fatal(err)
		}
	}
	heartbeat(2)
	rd := m.Ready()
	if rd.Checkpoint != 200 {
		t.Fatalf("Ready.Checkpoint = %d, want 200 (the only span's checkpoint)", rd.Checkpoint)
	}
	if got := responseCheckpoint(t, rd); got != 100 {
		t.Fatalf("the Ready asking to persist 200 tells nodes checkpoint %d, want the persisted 100", got)
	}
	m.Advance() // handed to the writer
	if got := m.Status().Checkpoint; got != 100 {
		t.Fatalf("Status().Checkpoint = %d while the write is in flight, want the old 100", got)
	}
	heartbeat(3)
	rd = m.Ready()
	if rd.Checkpoint != 0 {
		t.Fatalf("Ready.Checkpoint = %d while a write is in flight, want none (one at a time)", rd.Checkpoint)
	}
	if got := responseCheckpoint(t, rd); got != 100 {
		t.Fatalf("with the write of 200 in flight nodes are told checkpoint %d, want the persisted 100", got)
	}
	m.Advance()
	m.CheckpointNotPersisted()
	if got := m.Status().Checkpoint; got != 100 {
		t.Fatalf("Status().Checkpoint = %d after a failed persist, want the old 100", got)
	}
	if rd := m.Ready(); rd.Checkpoint != 200 {
		t.Fatalf("next Ready.Checkpoint = %d, want 200 asked again", rd.Checkpoint)
	}
	m.Advance()
	m.CheckpointPersisted(200)
	if got := m.Status().Checkpoint; got != 200 {
		t.Fatalf("Status().Checkpoint = %d after a successful persist, want 200", got)
	}
	heartbeat(4)
	if got := responseCheckpoint(t, m.Ready()); got != 200 {
		t.Fatalf("after the write nodes are told checkpoint %d, want 200", got)
	}
	m.Advance()
	if rd := m.Ready(); rd.Checkpoint != 0 {
		t.Fatalf("Ready.Checkpoint = %d with nothing new to persist", rd.Checkpoint)
	}
}

package dispatchermanager

import (
	"bytes"
	"errors"
	"math/rand"
	"strconv"
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// seedEnvelopes are well-formed envelopes whose bytes the fuzzers mutate.
func seedEnvelopes() []*heartbeatpb.Envelope {
	mk := func(seq uint64, body string, lines ...string) *heartbeatpb.Envelope {
		input := ""
		for _, l := range lines {
			input += l + "\n"
		}
		env, err := buildEnvelope(body, map[string]string{"seq": strconv.FormatUint(seq, 10), "redo": "true"}, input)
		if err != nil {
			panic(err)
		}
		return env
	}
	return []*heartbeatpb.Envelope{
		mk(1, "bootstrap", "table id=1 load=100", "table id=2 load=7"),
		mk(2, "schedule", "create d=5-1 span=1:-g op=5.1 kind=add ts=100", "create d=5-2 span=1:g- op=5.2 kind=add ts=90"),
		mk(3, "merge", "merge d=5-9 span=1:- sources=5-1,5-2 op=5.3"),
		mk(4, "schedule", "remove d=5-9 span=1:- op=5.4 kind=move", "create d=5-5 span=2:- op=5.5 kind=split mode=redo"),
		mk(5, "response"),
	}
}

func newFuzzManager(t testing.TB) (*Manager, *fakeFactory) {
	f := &fakeFactory{all: map[heartbeatpb.DispatcherID]*fakeDispatcher{}}
	m, err := New(Config{ClusterID: "c1", NodeID: "n1", Changefeed: "cf1", Incarnation: 1, Factory: f}, time.UnixMilli(0))
	if err != nil {
		t.Fatal(err)
	}
	m.SetNodes([]string{"m1", "n1"})
	if err := m.SetEpoch(5, "m1", time.UnixMilli(0)); err != nil {
		t.Fatal(err)
	}
	return m, f
}

// checkInvariants verifies the manager's internal consistency after any input.
func checkInvariants(t testing.TB, m *Manager) {
	t.Helper()
	working := 0
	for id, e := range m.table.dispatchers {
		if e.id != id {
			t.Fatalf("dispatcher %v filed under %v", e.id, id)
		}
		if e.state == heartbeatpb.StateWorking {
			working++
			if o := m.table.working.overlapping(e.mode, e.span); o == nil {
				t.Fatalf("working dispatcher %v missing from the index", id)
			}
		}
	}
	indexed := 0
	if err := m.table.working.shapeErr(); err != nil {
		t.Fatalf("working index: %v", err)
	}
	m.table.working.each(func(k indexKey, list []*dispatcherEntry) {
		for i, e := range list {
			indexed++
			if e.mode != k.mode || e.span.TableId != k.table || e.state != heartbeatpb.StateWorking {
				t.Fatalf("index entry %v misfiled", e.id)
			}
			if i > 0 && span.Overlap(list[i-1].span, e.span) {
				t.Fatalf("I1 broken on the node: %v and %v overlap", list[i-1].id, e.id)
			}
			if i > 0 && bytes.Compare(list[i-1].span.StartKey, e.span.StartKey) >= 0 {
				t.Fatalf("working index out of order: %v before %v", list[i-1].id, e.id)
			}
		}
	})
	if indexed != working {
		t.Fatalf("index holds %d, %d working", indexed, working)
	}
	for _, journal := range []map[span.Key]*journalEntry{m.journal.current, m.journal.redo} {
		for k, j := range journal {
			if span.KeyOf(j.req.Config.Span) != k {
				t.Fatalf("journal entry under the wrong key")
			}
		}
	}
}

// stepBytes decodes data as an envelope and steps it; a decode error must be a plain error.
func stepBytes(t testing.TB, m *Manager, data []byte, now time.Time) bool {
	var env heartbeatpb.Envelope
	if err := env.Unmarshal(data); err != nil {
		return false
	}
	return stepEnv(t, m, &env, now)
}

// stepEnv steps env and checks that a rejection changed nothing.
func stepEnv(t testing.TB, m *Manager, env *heartbeatpb.Envelope, now time.Time) bool {
	before := m.Snapshot()
	err := m.Step(env, now)
	if err != nil && (errors.Is(err, ErrInvalid) || errors.Is(err, ErrStaleEpoch) || errors.Is(err, ErrDuplicate) ||
		errors.Is(err, ErrNotBootstrapped)) {
		if after := m.Snapshot(); !snapshotsEqual(before, after) {
			t.Fatalf("rejected envelope changed the state: %v", err)
		}
	}
	checkInvariants(t, m)
	return err == nil
}

func snapshotsEqual(a, b ManagerSnapshot) bool {
	return printSnapshot(a) == printSnapshot(b)
}

// TestStepRandomBytes feeds random and mutated envelopes into Step: never a panic, rejected
// input never changes anything, and the internal invariants hold throughout.
func TestStepRandomBytes(t *testing.T) {
	seeds := seedEnvelopes()
	var encoded [][]byte
	for _, env := range seeds {
		b, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		encoded = append(encoded, b)
	}
	rng := rand.New(rand.NewSource(42))
	m, _ := newFuzzManager(t)
	now := time.UnixMilli(1_700_000_000_000)
	accepted, seq := 0, uint64(1_000_000)
	for i := 0; i < 20000; i++ {
		var data []byte
		switch rng.Intn(3) {
		case 0:
			data = make([]byte, rng.Intn(64))
			rng.Read(data)
		default:
			data = append([]byte(nil), encoded[rng.Intn(len(encoded))]...)
			for n := rng.Intn(4); n >= 0 && len(data) > 0; n-- {
				data[rng.Intn(len(data))] = byte(rng.Intn(256))
			}
		}
		var env heartbeatpb.Envelope
		if err := env.Unmarshal(data); err != nil {
			continue
		}
		if rng.Intn(4) > 0 {
			// Repair the header half of the time so the mutated body reaches the handlers.
			seq++
			env.ClusterId, env.Changefeed, env.From, env.To, env.Epoch, env.Incarnation, env.Seq =
				"c1", "cf1", "m1", "n1", 5, 5, seq
		}
		if stepEnv(t, m, &env, now) {
			accepted++
		}
		if i%50 == 0 {
			now = now.Add(100 * time.Millisecond)
			m.Tick(now)
			m.Advance()
			checkInvariants(t, m)
		}
		// Re-step the intact seeds now and then so the state gets rich enough to mutate against.
		if i%500 == 0 {
			for _, env := range seeds {
				seq++
				env.Seq = seq
				b, _ := env.Marshal()
				stepBytes(t, m, b, now)
			}
		}
	}
	// The mutations must reach the request handlers, not only the header checks.
	if accepted < 100 {
		t.Fatalf("only %d mutated envelopes were accepted; the test exercises too little", accepted)
	}
	t.Logf("%d mutated envelopes accepted, %d dispatchers at the end", accepted, len(m.table.dispatchers))
}

// FuzzStep is the same property as a native fuzz target (go test -fuzz FuzzStep).
func FuzzStep(f *testing.F) {
	for _, env := range seedEnvelopes() {
		b, err := env.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _ := newFuzzManager(t)
		now := time.UnixMilli(1_700_000_000_000)
		for _, env := range seedEnvelopes()[:2] {
			b, _ := env.Marshal()
			stepBytes(t, m, b, now)
		}
		stepBytes(t, m, data, now)
		m.Tick(now.Add(time.Second))
		checkInvariants(t, m)
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	f := &fakeFactory{all: map[heartbeatpb.DispatcherID]*fakeDispatcher{}}
	good := Config{ClusterID: "c", NodeID: "n", Changefeed: "cf", Factory: f}
	for name, mut := range map[string]func(*Config){
		"cluster":  func(c *Config) { c.ClusterID = "" },
		"node":     func(c *Config) { c.NodeID = "" },
		"cf":       func(c *Config) { c.Changefeed = "" },
		"factory":  func(c *Config) { c.Factory = nil },
		"interval": func(c *Config) { c.HeartbeatInterval = -time.Second },
	} {
		cfg := good
		mut(&cfg)
		if _, err := New(cfg, time.Time{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	m, err := New(good, time.Time{})
	if err != nil || m.cfg.HeartbeatInterval != DefaultHeartbeatInterval {
		t.Fatalf("defaults not applied: %v %v", err, m.cfg.HeartbeatInterval)
	}
	if err := m.Step(nil, time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil envelope: %v", err)
	}
}

package maintainer

import (
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/dispatchermanager"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/runner"
	"github.com/tidemark/tidemark/span"
)

// simNode is one node process: a real dispatcher manager over simulated dispatchers. A restart
// replaces it with a new process (new incarnation, no dispatchers).
type simNode struct {
	id   string
	dm   *dispatchermanager.Manager
	sink *faultySink
}

// faultySink is a memory sink a test can make fail, as a full disk would: while fail is set it
// refuses appends and flushes with fail as the error text.
type faultySink struct {
	dispatcher.MemSink
	fail string
}

func (s *faultySink) Append(r dispatcher.Record) error {
	if s.fail != "" {
		return errors.New(s.fail)
	}
	return s.MemSink.Append(r)
}

func (s *faultySink) Flush() error {
	if s.fail != "" {
		return errors.New(s.fail)
	}
	return s.MemSink.Flush()
}

// sim drives one maintainer and real dispatcher managers through a lossy, duplicating,
// reordering network, failovers, restarts, joins and leaves, from one goroutine and a manual
// clock. The nodes' bootstrap answers carry their journals, so every failover restores.
type sim struct {
	t       *testing.T
	rng     *rand.Rand
	m       *Maintainer
	now     time.Time
	nodes   map[string]*simNode
	inbox   []*heartbeatpb.Envelope // node -> maintainer, delivered next step
	reached map[spanKeyMode]uint64  // highest checkpoint any dispatcher reported per span
	cp      uint64                  // highest checkpoint persisted
	nextInc uint64
	drop    float64
}

type spanKeyMode struct {
	key  span.Key
	mode heartbeatpb.Mode
}

// addNode starts a node process under id: a first start or, for a known id, a restart.
func (s *sim) addNode(id string) {
	s.nextInc++
	sink := &faultySink{}
	// A full report every step, as a node that heartbeats faster than the maintainer ticks.
	dm := newSimManager(s.t, testConfig(), id, s.nextInc, simStep, sink, s.now)
	s.nodes[id] = &simNode{id: id, dm: dm, sink: sink}
	s.setRegistry()
	if s.m != nil {
		s.tellEpoch(dm) // a starting node learns the current epoch from etcd's leader watch
	}
}

// newSimManager is a real dispatcher manager of node for cfg's changefeed, over simulated
// dispatchers writing to sink; hb is its full report period (0: the default).
func newSimManager(t *testing.T, cfg Config, node string, inc uint64, hb time.Duration, sink dispatcher.Sink,
	now time.Time) *dispatchermanager.Manager {
	t.Helper()
	f, err := dispatcher.NewSimFactory(dispatcher.SimFactoryConfig{Node: node, Changefeed: cfg.Changefeed, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	dm, err := dispatchermanager.New(dispatchermanager.Config{ClusterID: cfg.ClusterID, NodeID: node,
		Changefeed: cfg.Changefeed, Incarnation: inc, HeartbeatInterval: hb, Factory: f, ChunkBytes: simChunkBytes}, now)
	if err != nil {
		t.Fatal(err)
	}
	return dm
}

// removeNode ends a node process for good; the registry no longer lists it.
func (s *sim) removeNode(id string) {
	delete(s.nodes, id)
	s.setRegistry()
}

// setRegistry tells every node which nodes etcd registers: the maintainer's node and the others.
func (s *sim) setRegistry() {
	ids := append(s.sortedNodes(), testConfig().SelfNode)
	for _, n := range s.nodes {
		n.dm.SetNodes(ids)
	}
}

func (s *sim) tellEpoch(dm *dispatchermanager.Manager) {
	if err := dm.SetEpoch(s.m.cfg.Epoch, s.m.cfg.SelfNode, s.now); err != nil {
		s.t.Fatalf("SetEpoch: %v", err)
	}
}

// simStore is the etcd side: the guarded forward-only checkpoint CAS (I3) and no eviction
// (nodes here stay alive until they leave, see TestSimulatedFaults).
type simStore struct{ s *sim }

func (st simStore) PersistCheckpoint(cp uint64) (runner.Written, error) {
	if cp <= st.s.cp {
		st.s.t.Fatalf("I3: checkpoint %d after %d", cp, st.s.cp)
	}
	st.s.cp = cp
	return runner.Persisted, nil
}

func (st simStore) Evict(node string) error {
	st.s.t.Fatalf("maintainer evicts %s, but no node here is silent past the bootstrap timeout", node)
	return nil
}

// toNodes is the lossy network from the maintainer to the nodes. A Create is checked against
// what its range reached (I2) before it travels.
type toNodes struct{ s *sim }

func (tr toNodes) Send(env *heartbeatpb.Envelope) error {
	s := tr.s
	if sch := env.GetSchedule(); sch != nil {
		for _, r := range sch.Requests {
			k := spanKeyMode{span.KeyOf(r.Config.Span), r.Config.Mode}
			if reached, ok := s.reached[k]; ok && r.Action == heartbeatpb.ActionCreate && r.Config.StartTs > reached {
				s.t.Fatalf("I2: %s starts at %d above the %d its range reached", span.String(r.Config.Span), r.Config.StartTs, reached)
			}
		}
	}
	n := s.nodes[env.To]
	if n == nil || s.rng.Float64() < s.drop {
		return nil
	}
	// Stale epochs (a node that has not heard of the failover cannot happen here, but answers
	// to an earlier process can), duplicates and requests to a restarted empty process are
	// refused by the real manager; only a malformed envelope is a bug.
	if err := n.dm.Step(env, s.now); errors.Is(err, dispatchermanager.ErrInvalid) {
		s.t.Fatalf("I7: %s refused a maintainer envelope as malformed: %v", n.id, err)
	}
	return nil
}

// toMaintainer queues a node's envelopes for the next step and records what each span reached.
type toMaintainer struct{ s *sim }

func (tr toMaintainer) Send(env *heartbeatpb.Envelope) error {
	if hb := env.GetHeartbeat(); hb != nil {
		for _, st := range hb.Statuses {
			if st.State == heartbeatpb.StateWorking {
				k := spanKeyMode{span.KeyOf(st.Span), st.Mode}
				tr.s.reached[k] = max(tr.s.reached[k], st.CheckpointTs)
			}
		}
		// A watermark stands for the durable checkpoints of the node's working dispatchers of
		// its mode, which no status carries any more: take them from the node itself (the
		// heartbeat was built in the Tick just before, so the snapshot is the set it describes).
		// The digest is of the node's whole set as of the heartbeat.
		// A heartbeat cut in pieces (simChunkBytes) carries it in its last piece only; the
		// others carry statuses and nothing else.
		set := make(map[heartbeatpb.DispatcherID]heartbeatpb.ComponentState)
		for _, d := range tr.s.nodes[env.From].dm.Snapshot().Dispatchers {
			set[d.Id] = d.State
		}
		leading := hb.Digest == nil && len(hb.Statuses) > 0 && len(hb.Watermarks)+len(hb.Journal)+len(hb.Rejections) == 0 &&
			!hb.Periodic && (hb.Chunk == nil || hb.Chunk.Index < hb.Chunk.Total-1)
		if want := digestOf(set); !leading && (hb.Digest == nil || *hb.Digest != *want) {
			tr.s.t.Fatalf("%s: heartbeat digest %v, its set's is %v", env.From, hb.Digest, want)
		}
		if len(hb.Watermarks) > 0 {
			marks := make(map[heartbeatpb.Mode]bool)
			for _, w := range hb.Watermarks {
				marks[w.Mode] = true
			}
			for _, d := range tr.s.nodes[env.From].dm.Snapshot().Dispatchers {
				if marks[d.Mode] && d.State == heartbeatpb.StateWorking {
					k := spanKeyMode{span.KeyOf(d.Span), d.Mode}
					tr.s.reached[k] = max(tr.s.reached[k], d.CheckpointTs)
				}
			}
		}
	}
	tr.s.inbox = append(tr.s.inbox, env)
	return nil
}

// checkNodesClean asserts the nodes run exactly want working dispatchers and hold no journal
// entry, merge or stopped record: every acknowledgement got through.
func (s *sim) checkNodesClean(want int) {
	working := 0
	for _, id := range s.sortedNodes() {
		snap := s.nodes[id].dm.Snapshot()
		for _, d := range snap.Dispatchers {
			if d.State != heartbeatpb.StateWorking {
				s.t.Fatalf("%s still holds %v in state %v", id, d.Id, d.State)
			}
			working++
		}
		if len(snap.Operators)+len(snap.Merges) > 0 {
			s.t.Fatalf("%s still holds %d journal entries and %d merges", id, len(snap.Operators), len(snap.Merges))
		}
	}
	if working != want {
		s.t.Fatalf("%d working dispatchers, want %d", working, want)
	}
}

// failover replaces the maintainer with a new one of a higher epoch that knows only the
// persisted checkpoint and what the nodes tell it.
func (s *sim) failover(cfg Config) {
	cfg.Epoch = 5
	if s.m != nil {
		cfg.Epoch = s.m.cfg.Epoch + 1
	}
	cfg.PersistedCheckpoint = s.cp
	m, err := New(cfg, s.sortedNodes(), s.now)
	if err != nil {
		s.t.Fatal(err)
	}
	s.m = m
	for _, id := range s.sortedNodes() {
		s.tellEpoch(s.nodes[id].dm) // etcd's leader watch tells every node of the new epoch
	}
}

// simStep is how far the clock moves in one step.
const simStep = 300 * time.Millisecond

// step runs one round: deliver node traffic (shuffled, one duplicated, some dropped), tick the
// maintainer and perform its Ready (some messages dropped), tick every node and perform its
// Ready; then checks I1.
func (s *sim) step() {
	in := s.inbox
	s.inbox = nil
	if len(in) > 1 {
		s.rng.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		in = append(in, in[s.rng.Intn(len(in))])
	}
	for _, env := range in {
		if s.rng.Float64() < s.drop {
			continue
		}
		// Stale errors are expected: answers to an earlier maintainer, senders that left.
		if err := s.m.Step(env, s.now); err != nil && !errors.Is(err, ErrStale) {
			s.t.Fatalf("step: %v", err)
		}
	}
	s.now = s.now.Add(simStep)
	s.m.Tick(s.now)
	if err := runner.Maintainer(runner.Ready(s.m.Ready()), s.m, simStore{s}, toNodes{s}); err != nil {
		s.t.Fatal(err)
	}
	for _, id := range s.sortedNodes() {
		dm := s.nodes[id].dm
		dm.Tick(s.now)
		if err := runner.Manager(dm.Ready(), dm, toMaintainer{s}); err != nil {
			s.t.Fatal(err)
		}
	}
	s.checkExclusive()
}

func (s *sim) sortedNodes() []string {
	ids := make([]string, 0, len(s.nodes))
	for id := range s.nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// checkExclusive is I1: no two working dispatchers of one mode share a key.
func (s *sim) checkExclusive() {
	var working []heartbeatpb.DispatcherStatus
	for _, id := range s.sortedNodes() {
		for _, d := range s.nodes[id].dm.Snapshot().Dispatchers {
			if d.State == heartbeatpb.StateWorking {
				working = append(working, d)
			}
		}
	}
	for i := range working {
		for j := i + 1; j < len(working); j++ {
			if working[i].Mode == working[j].Mode && span.Overlap(working[i].Span, working[j].Span) {
				s.t.Fatalf("I1: %v and %v both work on %s", working[i].Id, working[j].Id, span.String(working[i].Span))
			}
		}
	}
}

// TestSimulatedFaults drives maintainers and real dispatcher managers through seeded node
// crashes, joins, process restarts, maintainer failovers (each restoring the nodes' journals)
// and lossy, duplicating, reordering networks, checking I1-I3 after every step and convergence
// (I6) once faults stop: every span replicating, no operator in flight, balanced, and the nodes
// left with exactly one working dispatcher per span and no journal.
func TestSimulatedFaults(t *testing.T) {
	restored := 0
	for seed := int64(1); seed <= simSeeds; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			s := &sim{t: t, rng: rand.New(rand.NewSource(seed)), now: t0, nodes: make(map[string]*simNode),
				reached: make(map[spanKeyMode]uint64), drop: 0.45}
			cfg := testConfig()
			cfg.ChangefeedConfig.Redo = seed%2 == 0
			cfg.ChangefeedConfig.Tables = nil
			for i := int64(1); i <= 12; i++ {
				cfg.ChangefeedConfig.Tables = append(cfg.ChangefeedConfig.Tables, heartbeatpb.TableConfig{TableId: i})
			}
			cfg.ScheduleBatch = 4
			// Nodes here are alive until they leave, so none may be given up as silent: that
			// fallback trades I1 for liveness and is tested in testdata/bootstrap_timeout.txt.
			cfg.BootstrapTimeout = time.Hour
			for _, id := range []string{"n1", "n2", "n3"} {
				s.addNode(id)
			}
			s.failover(cfg)
			next := 4
			for i := 0; i < 200; i++ {
				switch r := s.rng.Intn(12); {
				case r == 0 && len(s.nodes) > 1:
					ids := s.sortedNodes()
					victim := ids[s.rng.Intn(len(ids))]
					s.removeNode(victim)
					s.m.NodeLeft(victim, s.now)
				case r == 2 && len(s.nodes) > 0:
					ids := s.sortedNodes()
					s.addNode(ids[s.rng.Intn(len(ids))]) // restart: same ID, new process
				case r == 3 && s.rng.Intn(3) == 0:
					s.failover(cfg)
				case r == 1:
					id := fmt.Sprintf("n%d", next)
					next++
					s.addNode(id)
					s.m.NodeJoined(id, s.now)
				}
				restored += countJournaled(s.inbox)
				s.step()
			}
			s.drop = 0
			for i := 0; i < 100; i++ {
				s.step()
			}
			st := s.m.Status()
			want := len(cfg.ChangefeedConfig.Tables)
			if cfg.ChangefeedConfig.Redo {
				want *= 2
			}
			if st.Spans["replicating"] != want || len(st.Operators) != 0 {
				t.Fatalf("I6: not converged: %v, %d operators", st.Spans, len(st.Operators))
			}
			lo, hi := want, 0
			for _, c := range st.NodeSpans {
				lo, hi = min(lo, c), max(hi, c)
			}
			if hi-lo > 1 {
				t.Fatalf("I6: unbalanced: %v", st.NodeSpans)
			}
			if s.cp == 0 {
				t.Fatal("checkpoint never persisted")
			}
			s.checkNodesClean(want)
		})
	}
	// The point of driving real managers: their bootstrap answers carry journals, so failovers
	// in the middle of operators restore them. A run where none did would test less than it says.
	if restored == 0 {
		t.Fatal("no bootstrap answer carried a journal: restore was never exercised")
	}
	t.Logf("%d bootstrap answers carried journal entries", restored)
}

// countJournaled counts the bootstrap answers in envs that carry journal entries or merges.
func countJournaled(envs []*heartbeatpb.Envelope) int {
	n := 0
	for _, env := range envs {
		if r := env.GetBootstrapResponse(); r != nil && len(r.Operators)+len(r.MergeOperators) > 0 &&
			(r.Chunk == nil || r.Chunk.Index == r.Chunk.Total-1) { // an answer's journal ends in its last piece
			n++
		}
	}
	return n
}

// simChunkBytes cuts the real managers' bootstrap answers and listings into pieces of about
// two statuses, so the lossy, reordering network here takes pieces of answers too.
const simChunkBytes = 150

// simSeeds is how many seeded runs TestSimulatedFaults makes.
const simSeeds = 40

package maintainer

import (
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// simDispatcher is one dispatcher on a simulated node.
type simDispatcher struct {
	st     heartbeatpb.DispatcherStatus
	stopOp heartbeatpb.OperatorID // the operator that stopped it; its ack releases the record
}

// simNode is a small model of a dispatcher manager: it creates and removes dispatchers on
// request, keeps journal entries and stopped records until acknowledged, and reports
// everything in a full heartbeat on every step.
type simNode struct {
	id          string
	incarnation uint64
	seq         uint64
	lastSeq     uint64 // last maintainer seq accepted
	lastInc     uint64 // incarnation (epoch) of the maintainer lastSeq belongs to
	epoch       uint64 // highest maintainer epoch seen: lower ones are fenced
	dispatchers map[heartbeatpb.DispatcherID]*simDispatcher
	journal     map[heartbeatpb.OperatorID]bool
	rejections  []heartbeatpb.RequestRejection
}

type sim struct {
	t       *testing.T
	rng     *rand.Rand
	m       *Maintainer
	now     time.Time
	nodes   map[string]*simNode
	inbox   []*heartbeatpb.Envelope // node -> maintainer, delivered next step
	reached map[spanKeyMode]uint64  // highest checkpoint any dispatcher reached per span
	cp      uint64                  // highest checkpoint persisted
	nextInc uint64
	drop    float64
}

type spanKeyMode struct {
	key  span.Key
	mode heartbeatpb.Mode
}

func (s *sim) addNode(id string) {
	s.nextInc++
	n := &simNode{id: id, incarnation: s.nextInc,
		dispatchers: make(map[heartbeatpb.DispatcherID]*simDispatcher), journal: make(map[heartbeatpb.OperatorID]bool)}
	if s.m != nil {
		n.epoch = s.m.cfg.Epoch // a starting node learns the current epoch from etcd's leader watch
	}
	s.nodes[id] = n
}

// deliver hands one maintainer envelope to its node, applying it like a dispatcher manager.
func (s *sim) deliver(env *heartbeatpb.Envelope) {
	n := s.nodes[env.To]
	if n == nil || env.Epoch < n.epoch || (env.Incarnation == n.lastInc && env.Seq <= n.lastSeq) {
		return
	}
	n.epoch, n.lastInc, n.lastSeq = env.Epoch, env.Incarnation, env.Seq
	switch b := env.Body.(type) {
	case *heartbeatpb.Envelope_BootstrapRequest:
		resp := &heartbeatpb.MaintainerBootstrapResponse{CheckpointTs: s.cp}
		for _, id := range sortedIDs(n) {
			resp.Dispatchers = append(resp.Dispatchers, n.dispatchers[id].st)
		}
		s.send(n, &heartbeatpb.Envelope_BootstrapResponse{BootstrapResponse: resp})
	case *heartbeatpb.Envelope_HeartbeatResponse:
		for _, op := range b.HeartbeatResponse.Finished {
			delete(n.journal, op)
			for id, d := range n.dispatchers {
				if d.st.State == heartbeatpb.StateStopped && d.stopOp == op {
					delete(n.dispatchers, id)
				}
			}
		}
	case *heartbeatpb.Envelope_Schedule:
		for _, r := range b.Schedule.Requests {
			s.apply(n, r)
		}
	}
}

func (s *sim) apply(n *simNode, r heartbeatpb.ScheduleDispatcherRequest) {
	d := n.dispatchers[r.Config.Id]
	switch r.Action {
	case heartbeatpb.ActionCreate:
		if d != nil {
			return
		}
		k := spanKeyMode{span.KeyOf(r.Config.Span), r.Config.Mode}
		if reached, ok := s.reached[k]; ok && r.Config.StartTs > reached {
			s.t.Fatalf("I2: %s starts at %d above the %d its range reached", span.String(r.Config.Span), r.Config.StartTs, reached)
		}
		n.journal[r.Operator.Id] = true
		n.dispatchers[r.Config.Id] = &simDispatcher{st: heartbeatpb.DispatcherStatus{Id: r.Config.Id,
			Span: r.Config.Span, Mode: r.Config.Mode, State: heartbeatpb.StateWorking, CheckpointTs: r.Config.StartTs}}
	case heartbeatpb.ActionRemove:
		if d == nil {
			n.rejections = append(n.rejections, heartbeatpb.RequestRejection{OperatorId: r.Operator.Id,
				DispatcherId: r.Config.Id, Reason: "no such dispatcher"})
			return
		}
		n.journal[r.Operator.Id] = true
		if d.st.State == heartbeatpb.StateWorking {
			d.st.State, d.stopOp = heartbeatpb.StateStopped, r.Operator.Id
		}
	}
}

func (s *sim) send(n *simNode, body interface{}) {
	n.seq++
	env := &heartbeatpb.Envelope{ClusterId: "c1", Changefeed: "cf", From: n.id, To: "self", Epoch: n.epoch,
		Incarnation: n.incarnation, Seq: n.seq}
	switch b := body.(type) {
	case *heartbeatpb.Envelope_BootstrapResponse:
		env.Body = b
	case *heartbeatpb.Envelope_Heartbeat:
		env.Body = b
	}
	s.inbox = append(s.inbox, env)
}

// heartbeat advances a node's working dispatchers and sends its full report.
func (s *sim) heartbeat(n *simNode) {
	hb := &heartbeatpb.HeartBeatRequest{Full: true, Rejections: n.rejections}
	n.rejections = nil
	for _, id := range sortedIDs(n) {
		d := n.dispatchers[id]
		if d.st.State == heartbeatpb.StateWorking {
			d.st.CheckpointTs += uint64(1 + s.rng.Intn(10))
			k := spanKeyMode{span.KeyOf(d.st.Span), d.st.Mode}
			s.reached[k] = max(s.reached[k], d.st.CheckpointTs)
		}
		hb.Statuses = append(hb.Statuses, d.st)
	}
	for op := range n.journal {
		hb.Journal = append(hb.Journal, op)
	}
	sort.Slice(hb.Journal, func(i, j int) bool { return hb.Journal[i].Seq < hb.Journal[j].Seq })
	s.send(n, &heartbeatpb.Envelope_Heartbeat{Heartbeat: hb})
}

// checkNodesClean asserts the nodes run exactly want working dispatchers and hold no journal
// entry or stopped record: every acknowledgement got through.
func (s *sim) checkNodesClean(want int) {
	working := 0
	for _, n := range s.nodes {
		for _, d := range n.dispatchers {
			if d.st.State != heartbeatpb.StateWorking {
				s.t.Fatalf("%s still holds %v in state %v", n.id, d.st.Id, d.st.State)
			}
			working++
		}
		if len(n.journal) > 0 {
			s.t.Fatalf("%s still holds %d journal entries", n.id, len(n.journal))
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
	for _, n := range s.nodes {
		n.epoch = cfg.Epoch // etcd's leader watch tells every node of the new epoch
	}
}

func sortedIDs(n *simNode) []heartbeatpb.DispatcherID {
	ids := make([]heartbeatpb.DispatcherID, 0, len(n.dispatchers))
	for id := range n.dispatchers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Lo < ids[j].Lo })
	return ids
}

// step runs one round: deliver node traffic (some dropped), tick, flush Ready (some dropped),
// heartbeats; then checks the invariants.
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
	s.now = s.now.Add(300 * time.Millisecond)
	s.m.Tick(s.now)
	rd := s.m.Ready()
	if rd.Checkpoint > 0 {
		if rd.Checkpoint <= s.cp {
			s.t.Fatalf("I3: checkpoint %d after %d", rd.Checkpoint, s.cp)
		}
		s.cp = rd.Checkpoint
	}
	for _, env := range rd.Messages {
		if s.rng.Float64() >= s.drop {
			s.deliver(env)
		}
	}
	s.m.Advance()
	for _, id := range s.sortedNodes() {
		s.heartbeat(s.nodes[id])
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
	for _, n := range s.nodes {
		for _, d := range n.dispatchers {
			if d.st.State == heartbeatpb.StateWorking {
				working = append(working, d.st)
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

// TestSimulatedFaults drives maintainers through seeded node crashes, joins, process restarts,
// maintainer failovers and lossy, duplicating, reordering networks, checking I1-I3 after every
// step and convergence (I6) once faults stop: every span replicating, no operator in flight,
// balanced, and the nodes left with exactly one working dispatcher per span and no journal.
func TestSimulatedFaults(t *testing.T) {
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
					delete(s.nodes, victim)
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
}

// simSeeds is how many seeded runs TestSimulatedFaults makes.
const simSeeds = 40

package operator_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/dispatchermanager"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
	"github.com/tidemark/tidemark/ts"
)

// The golden files (testdata/ops) feed operators the answers a real node gives; these tests
// check the cancel rule against the real thing: operators driven by dispatchermanager.Managers
// over simulated dispatchers, every request delivered unless a test drops it.

// realPeers is one maintainer's view of a few real nodes: it delivers an operator's requests and
// feeds it back the statuses and refusals the nodes' heartbeats carry.
type realPeers struct {
	t          *testing.T
	now        time.Time
	startTs    uint64
	nodes      map[string]*dispatchermanager.Manager
	seq        map[string]uint64
	op         operator.Operator
	rejections []heartbeatpb.RequestRejection
	drop       func(operator.Outgoing) bool // requests lost on the way; nil: none
}

func newRealPeers(t *testing.T, names ...string) *realPeers {
	now := time.UnixMilli(1_700_000_000_000)
	p := &realPeers{t: t, now: now, startTs: ts.FromTime(now),
		nodes: map[string]*dispatchermanager.Manager{}, seq: map[string]uint64{}}
	for _, name := range names {
		sink, err := dispatcher.NewFileSink(filepath.Join(t.TempDir(), name+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		f, err := dispatcher.NewSimFactory(dispatcher.SimFactoryConfig{Node: name, Changefeed: "cf1", Sink: sink})
		if err != nil {
			t.Fatal(err)
		}
		m, err := dispatchermanager.New(dispatchermanager.Config{ClusterID: "c1", NodeID: name, Changefeed: "cf1",
			Incarnation: 1, Factory: f}, now)
		if err != nil {
			t.Fatal(err)
		}
		m.SetNodes(append([]string{"m1"}, names...))
		if err := m.SetEpoch(5, "m1", now); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close(); _ = f.Close() })
		p.nodes[name] = m
		p.config(name, 1)
	}
	return p
}

// config sends node the changefeed config with tables, as the maintainer does on a change.
func (p *realPeers) config(node string, tables ...int64) {
	cfg := heartbeatpb.ChangefeedConfig{Id: "cf1", StartTs: p.startTs}
	for _, t := range tables {
		cfg.Tables = append(cfg.Tables, heartbeatpb.TableConfig{TableId: t, Load: 1000})
	}
	p.step(node, func(env *heartbeatpb.Envelope) {
		env.Body = &heartbeatpb.Envelope_BootstrapRequest{BootstrapRequest: &heartbeatpb.MaintainerBootstrapRequest{Config: cfg}}
	})
	p.nodes[node].Advance() // the bootstrap answer: this view already knows what the node holds
}

func (p *realPeers) step(node string, body func(*heartbeatpb.Envelope)) {
	p.t.Helper()
	p.seq[node]++
	env := &heartbeatpb.Envelope{ClusterId: "c1", Changefeed: "cf1", From: "m1", To: node,
		Epoch: 5, Incarnation: 5, Seq: p.seq[node]}
	body(env)
	if err := p.nodes[node].Step(env, p.now); err != nil {
		p.t.Fatalf("%s refused the envelope: %v", node, err)
	}
}

// deliver sends each request to its node, one envelope per request, in order.
func (p *realPeers) deliver(out []operator.Outgoing) {
	for _, o := range out {
		if p.drop != nil && p.drop(o) {
			continue
		}
		req := *o.Schedule
		p.step(o.Node, func(env *heartbeatpb.Envelope) {
			env.Body = &heartbeatpb.Envelope_Schedule{Schedule: &heartbeatpb.ScheduleDispatcherRequests{
				Requests: []heartbeatpb.ScheduleDispatcherRequest{req}}}
		})
	}
}

// start starts op and delivers its first requests.
func (p *realPeers) start(op operator.Operator) {
	p.op = op
	p.deliver(op.Start(p.now))
}

// tick lets node run 100 ms and feeds what its heartbeat says to the operator.
func (p *realPeers) tick(node string) {
	p.now = p.now.Add(100 * time.Millisecond)
	m := p.nodes[node]
	m.Tick(p.now)
	for _, env := range m.Ready() {
		hb := env.GetHeartbeat()
		if hb == nil {
			continue
		}
		for i := range hb.Statuses {
			p.deliver(p.op.OnStatus(node, &hb.Statuses[i], p.now))
		}
		for i := range hb.Rejections {
			p.rejections = append(p.rejections, hb.Rejections[i])
			p.deliver(p.op.(operator.RejectionHandler).OnRejected(node, &hb.Rejections[i], p.now))
		}
	}
	m.Advance()
}

// finish ticks every node until the operator is done, then acknowledges it as the maintainer does.
func (p *realPeers) finish(nodes ...string) operator.Result {
	p.t.Helper()
	for i := 0; i < 50; i++ {
		if res, done := p.op.Finished(); done {
			id := p.op.ID()
			for _, n := range nodes {
				p.step(n, func(env *heartbeatpb.Envelope) {
					env.Body = &heartbeatpb.Envelope_HeartbeatResponse{HeartbeatResponse: &heartbeatpb.HeartBeatResponse{
						Finished: []heartbeatpb.OperatorID{id}}}
				})
			}
			return res
		}
		for _, n := range nodes {
			p.tick(n)
		}
	}
	p.t.Fatalf("operator %v not done, phase %s", p.op.ID(), p.op.(operator.Phaser).Phase())
	return operator.Result{}
}

// working lists the dispatchers node runs.
func (p *realPeers) working(node string) []heartbeatpb.DispatcherID {
	var out []heartbeatpb.DispatcherID
	for _, st := range p.nodes[node].Snapshot().Dispatchers {
		if st.State == heartbeatpb.StateWorking {
			out = append(out, st.Id)
		}
	}
	return out
}

func did(lo uint64) heartbeatpb.DispatcherID { return heartbeatpb.DispatcherID{Hi: 5, Lo: lo} }
func opID(seq uint64) heartbeatpb.OperatorID { return heartbeatpb.OperatorID{Epoch: 5, Seq: seq} }

// placeOn puts t1 on node as dispatcher 5.1 through an Add and returns its checkpoint.
func (p *realPeers) placeOn(node string) uint64 {
	p.t.Helper()
	add, err := operator.NewAdd(opID(1), span.TableSpan(1), heartbeatpb.ModeDefault, node, did(1), p.startTs, p.now)
	if err != nil {
		p.t.Fatal(err)
	}
	p.start(add)
	res := p.finish(node)
	if res.Outcome != operator.OutcomeSucceeded {
		p.t.Fatalf("add: %+v", res)
	}
	return res.Bind[0].Checkpoint
}

// startMove places t1 on n1, then moves it to n2 up to the create: n1 reports Stopped, the
// create reaches n2, which makes the dispatcher at once.
func startMove(t *testing.T) (*realPeers, *operator.Move) {
	p := newRealPeers(t, "n1", "n2")
	cp := p.placeOn("n1")
	move, err := operator.NewMove(opID(2), span.TableSpan(1), heartbeatpb.ModeDefault, "n1", did(1), "n2", did(2), cp, p.now)
	if err != nil {
		t.Fatal(err)
	}
	p.start(move)
	p.tick("n1")
	return p, move
}

// TestTakeBackAgainstRealNodes: a Move whose table leaves while it creates, a Split whose table
// leaves with one child made and one whose create was lost, and a Move whose create timed out
// after the dest had run. Each take-back is answered by the node (Stopped for a dispatcher made,
// Removed for one never made), never refused, and leaves nothing of the operator working.
func TestTakeBackAgainstRealNodes(t *testing.T) {
	t.Run("move, table removed", func(t *testing.T) {
		p, move := startMove(t)
		if len(p.working("n2")) != 1 || move.Phase() != "creating" {
			t.Fatalf("n2 runs %v, phase %s", p.working("n2"), move.Phase())
		}
		p.config("n2") // the table leaves the changefeed
		p.deliver(move.OnTableRemoved(1, p.now))
		res := p.finish("n1", "n2")
		if res.Outcome != operator.OutcomeTableRemoved || len(p.rejections) != 0 || len(p.working("n2")) != 0 {
			t.Fatalf("result %+v, refusals %v, n2 still runs %v", res, p.rejections, p.working("n2"))
		}
	})
	t.Run("split, table removed", func(t *testing.T) {
		p := newRealPeers(t, "n1", "n2", "n3")
		cp := p.placeOn("n1")
		halves, err := span.Split(span.TableSpan(1), 2)
		if err != nil {
			t.Fatal(err)
		}
		split, err := operator.NewSplit(heartbeatpb.OperatorDescriptor{Id: opID(2), Kind: heartbeatpb.OpSplit,
			Sources: []heartbeatpb.SpanPlacement{{Span: span.TableSpan(1), NodeId: "n1", DispatcherId: did(1)}},
			Targets: []heartbeatpb.SpanPlacement{{Span: halves[0], NodeId: "n2", DispatcherId: did(2)},
				{Span: halves[1], NodeId: "n3", DispatcherId: did(3)}}}, cp, p.now)
		if err != nil {
			t.Fatal(err)
		}
		p.drop = func(o operator.Outgoing) bool { return o.Node == "n3" && o.Schedule.Action == heartbeatpb.ActionCreate }
		p.start(split)
		p.tick("n1")
		p.tick("n2") // child 5.2 works; 5.3's create was lost
		if len(p.working("n2")) != 1 || len(p.working("n3")) != 0 || split.Phase() != "creating" {
			t.Fatalf("n2 runs %v, n3 %v, phase %s", p.working("n2"), p.working("n3"), split.Phase())
		}
		p.drop = nil
		p.config("n2")
		p.config("n3")
		p.deliver(split.OnTableRemoved(1, p.now))
		res := p.finish("n1", "n2", "n3")
		if res.Outcome != operator.OutcomeTableRemoved || len(res.Bind)+len(res.Absent) != 0 || len(p.rejections) != 0 {
			t.Fatalf("result %+v, refusals %v", res, p.rejections)
		}
		if len(p.working("n2"))+len(p.working("n3")) != 0 {
			t.Fatalf("children left working: n2 %v, n3 %v", p.working("n2"), p.working("n3"))
		}
	})
	t.Run("move, create timed out", func(t *testing.T) {
		p, move := startMove(t)
		final := p.nodes["n1"].Snapshot().Dispatchers[0].CheckpointTs
		// The dest's heartbeats are lost for a while; it runs on, then the phase times out.
		for i := 0; i < 10; i++ {
			p.now = p.now.Add(100 * time.Millisecond)
			p.nodes["n2"].Tick(p.now)
			p.nodes["n2"].Advance()
		}
		p.deliver(move.Abort(p.now))
		res := p.finish("n1", "n2")
		if res.Outcome != operator.OutcomeAborted || len(res.Absent) != 1 || len(p.rejections) != 0 {
			t.Fatalf("result %+v, refusals %v", res, p.rejections)
		}
		if got := res.Absent[0].Checkpoint; got <= final {
			t.Fatalf("absent from %d: want the dest's final checkpoint, above the origin's %d", got, final)
		}
		if len(p.working("n2")) != 0 {
			t.Fatalf("n2 still runs %v", p.working("n2"))
		}
	})
}

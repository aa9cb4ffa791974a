package dispatchermanager

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/dispatcher/sinkcheck"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
	"github.com/tidemark/tidemark/ts"
)

// simNode is one node's manager over simulated dispatchers writing to a real sink file.
type simNode struct {
	m       *Manager
	factory *dispatcher.SimFactory
	path    string
	seq     uint64 // seq of the fake maintainer's envelopes to this node
	last    map[heartbeatpb.DispatcherID]heartbeatpb.DispatcherStatus
}

func newSimNode(t *testing.T, node string, now time.Time) *simNode {
	path := filepath.Join(t.TempDir(), node+".jsonl")
	sink, err := dispatcher.NewFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := dispatcher.NewSimFactory(dispatcher.SimFactoryConfig{Node: node, Changefeed: "cf1", Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{ClusterID: "c1", NodeID: node, Changefeed: "cf1", Incarnation: 1, Factory: f}, now)
	if err != nil {
		t.Fatal(err)
	}
	m.SetNodes([]string{"m1", "n1", "n2"})
	if err := m.SetEpoch(5, "m1", now); err != nil {
		t.Fatal(err)
	}
	return &simNode{m: m, factory: f, path: path, last: map[heartbeatpb.DispatcherID]heartbeatpb.DispatcherStatus{}}
}

func (n *simNode) step(t *testing.T, body func(env *heartbeatpb.Envelope), now time.Time) {
	t.Helper()
	n.seq++
	env := &heartbeatpb.Envelope{ClusterId: "c1", Changefeed: "cf1", From: "m1", To: n.m.cfg.NodeID,
		Epoch: 5, Incarnation: 5, Seq: n.seq}
	body(env)
	if err := n.m.Step(env, now); err != nil {
		t.Fatal(err)
	}
}

func (n *simNode) schedule(t *testing.T, now time.Time, reqs ...heartbeatpb.ScheduleDispatcherRequest) {
	n.step(t, func(env *heartbeatpb.Envelope) {
		env.Body = &heartbeatpb.Envelope_Schedule{Schedule: &heartbeatpb.ScheduleDispatcherRequests{Requests: reqs}}
	}, now)
}

// ack tells the node that operator op is finished, as the maintainer does once it saw it through.
func (n *simNode) ack(t *testing.T, now time.Time, ops ...uint64) {
	resp := &heartbeatpb.HeartBeatResponse{}
	for _, op := range ops {
		resp.Finished = append(resp.Finished, heartbeatpb.OperatorID{Epoch: 5, Seq: op})
	}
	n.step(t, func(env *heartbeatpb.Envelope) {
		env.Body = &heartbeatpb.Envelope_HeartbeatResponse{HeartbeatResponse: resp}
	}, now)
}

// collect records the latest status of every dispatcher from the heartbeats sent.
func (n *simNode) collect() {
	for _, env := range n.m.Ready() {
		if hb := env.GetHeartbeat(); hb != nil {
			for _, st := range hb.Statuses {
				n.last[st.Id] = st
			}
		}
	}
	n.m.Advance()
}

func schedReq(id uint64, s heartbeatpb.TableSpan, start uint64, action heartbeatpb.ScheduleAction,
	kind heartbeatpb.OperatorType, op uint64) heartbeatpb.ScheduleDispatcherRequest {
	return heartbeatpb.ScheduleDispatcherRequest{
		Config:       heartbeatpb.DispatcherConfig{Id: heartbeatpb.DispatcherID{Hi: 5, Lo: id}, Span: s, StartTs: start},
		Action:       action,
		OperatorType: kind,
		Operator:     heartbeatpb.OperatorDescriptor{Id: heartbeatpb.OperatorID{Epoch: 5, Seq: op}, Kind: kind},
	}
}

// TestSimulatedHandOffs moves, splits and merges a table across two nodes with simulated
// dispatchers, each new dispatcher starting from the reported final checkpoint, and checks the
// sink files: no hole (I2), no two owners at once (I1), no repeat but the tail a merge redoes.
func TestSimulatedHandOffs(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	startTs := ts.FromTime(now)
	nodes := []*simNode{newSimNode(t, "n1", now), newSimNode(t, "n2", now)}
	for _, n := range nodes {
		n.step(t, func(env *heartbeatpb.Envelope) {
			env.Body = &heartbeatpb.Envelope_BootstrapRequest{BootstrapRequest: &heartbeatpb.MaintainerBootstrapRequest{
				Config: heartbeatpb.ChangefeedConfig{Id: "cf1", StartTs: startTs, Tables: []heartbeatpb.TableConfig{{TableId: 1, Load: 1000}}}}}
		}, now)
	}
	run := func(d time.Duration) {
		for end := now.Add(d); now.Before(end); {
			now = now.Add(100 * time.Millisecond)
			for _, n := range nodes {
				n.m.Tick(now)
				n.collect()
			}
		}
	}
	final := func(n *simNode, id uint64) uint64 {
		st := n.last[heartbeatpb.DispatcherID{Hi: 5, Lo: id}]
		if st.State != heartbeatpb.StateStopped {
			t.Fatalf("dispatcher 5-%d not reported stopped: %v", id, st)
		}
		return st.CheckpointTs
	}
	whole := span.TableSpan(1)
	halves, err := span.Split(whole, 2)
	if err != nil {
		t.Fatal(err)
	}
	n1, n2 := nodes[0], nodes[1]

	n1.schedule(t, now, schedReq(1, whole, startTs, heartbeatpb.ActionCreate, heartbeatpb.OpAdd, 1))
	run(3 * time.Second)
	n1.ack(t, now, 1)
	// Move 5-1 from n1 to n2.
	n1.schedule(t, now, schedReq(1, whole, 0, heartbeatpb.ActionRemove, heartbeatpb.OpMove, 2))
	run(200 * time.Millisecond)
	n2.schedule(t, now, schedReq(2, whole, final(n1, 1), heartbeatpb.ActionCreate, heartbeatpb.OpMove, 2))
	run(3 * time.Second)
	n1.ack(t, now, 2)
	n2.ack(t, now, 2)
	// Split 5-2 on n2 into one child on each node.
	n2.schedule(t, now, schedReq(2, whole, 0, heartbeatpb.ActionRemove, heartbeatpb.OpSplit, 3))
	run(200 * time.Millisecond)
	parentTs := final(n2, 2)
	n2.schedule(t, now, schedReq(3, halves[0], parentTs, heartbeatpb.ActionCreate, heartbeatpb.OpSplit, 3))
	n1.schedule(t, now, schedReq(4, halves[1], parentTs, heartbeatpb.ActionCreate, heartbeatpb.OpSplit, 3))
	run(3 * time.Second)
	n1.ack(t, now, 3)
	n2.ack(t, now, 3)
	// Move the n1 child to n2, then merge the two children on n2.
	n1.schedule(t, now, schedReq(4, halves[1], 0, heartbeatpb.ActionRemove, heartbeatpb.OpMove, 4))
	run(200 * time.Millisecond)
	n2.schedule(t, now, schedReq(5, halves[1], final(n1, 4), heartbeatpb.ActionCreate, heartbeatpb.OpMove, 4))
	run(time.Second)
	n1.ack(t, now, 4)
	n2.ack(t, now, 4)
	n2.step(t, func(env *heartbeatpb.Envelope) {
		env.Body = &heartbeatpb.Envelope_Merge{Merge: &heartbeatpb.MergeDispatcherRequests{Requests: []heartbeatpb.MergeDispatcherRequest{{
			SourceIds: []heartbeatpb.DispatcherID{{Hi: 5, Lo: 3}, {Hi: 5, Lo: 5}}, MergedId: heartbeatpb.DispatcherID{Hi: 5, Lo: 6},
			MergedSpan: whole, Operator: heartbeatpb.OperatorDescriptor{Id: heartbeatpb.OperatorID{Epoch: 5, Seq: 5}, Kind: heartbeatpb.OpMerge},
		}}}}
	}, now)
	run(3 * time.Second)
	if st := n2.last[heartbeatpb.DispatcherID{Hi: 5, Lo: 6}]; st.State != heartbeatpb.StateWorking || st.CheckpointTs <= parentTs {
		t.Fatalf("merged dispatcher not working and advancing: %v", st)
	}
	n2.ack(t, now, 5)
	run(200 * time.Millisecond)
	if snap := n2.m.Snapshot(); len(snap.Dispatchers) != 1 || len(snap.Operators)+len(snap.Merges) != 0 {
		t.Fatalf("n2 should hold only the merged dispatcher and no journal: %+v", snap)
	}
	if snap := n1.m.Snapshot(); len(snap.Dispatchers) != 0 || len(snap.Operators) != 0 {
		t.Fatalf("n1 should hold nothing: %+v", snap)
	}

	checkSinks(t, nodes, startTs, now)
}

// checkSinks closes the nodes, reads their sink files back and checks them with sinkcheck.
func checkSinks(t *testing.T, nodes []*simNode, startTs uint64, now time.Time) {
	var records []dispatcher.Record
	for _, n := range nodes {
		if err := n.m.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.factory.Close(); err != nil {
			t.Fatal(err)
		}
		recs, err := dispatcher.ReadRecords(n.path)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, recs...)
	}
	rep, err := sinkcheck.Check(records, startTs, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatal(rep.Err())
	}
	// The merged dispatcher starts from the least source checkpoint, so it may repeat the tail of
	// the source that got further; nothing else may be processed twice.
	for _, o := range rep.Repeats {
		if o.B != "n2/5-6" {
			t.Fatalf("repeat outside the merge: %+v", o)
		}
	}
	if ts.ToTime(rep.Bound).Before(now.Add(-time.Second)) {
		t.Fatalf("checked only up to %v, the clock is at %v", ts.ToTime(rep.Bound), now)
	}
	t.Logf("%d records over %d spans, gap-free up to %v, %d repeats", rep.Records, rep.Spans, ts.ToTime(rep.Bound), len(rep.Repeats))
}

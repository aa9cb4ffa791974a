package maintainer

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

var t0 = time.UnixMilli(1_700_000_000_000)

// fakeNode is the minimal node side the scenarios need: it remembers the schedule requests it
// received and, on `apply`, acts on them the way a dispatcher manager does (create -> Working,
// remove -> Stopped at the dispatcher's checkpoint) and reports the result in a heartbeat.
type fakeNode struct {
	inbox       []heartbeatpb.ScheduleDispatcherRequest
	dispatchers map[heartbeatpb.DispatcherID]*heartbeatpb.DispatcherStatus
	seq         uint64
	incarnation uint64
}

type env struct {
	m     *Maintainer
	now   time.Time
	nodes map[string]*fakeNode
}

func (e *env) node(id string) *fakeNode {
	n := e.nodes[id]
	if n == nil {
		n = &fakeNode{dispatchers: make(map[heartbeatpb.DispatcherID]*heartbeatpb.DispatcherStatus), incarnation: 1}
		e.nodes[id] = n
	}
	return n
}

func (e *env) envelope(from string) *heartbeatpb.Envelope {
	n := e.node(from)
	n.seq++
	return &heartbeatpb.Envelope{ClusterId: "c1", Changefeed: "cf", From: from, To: "self",
		Epoch: 5, Incarnation: n.incarnation, Seq: n.seq}
}

func fmtSpan(s heartbeatpb.TableSpan) string {
	if span.Equal(s, span.TableSpan(s.TableId)) {
		return fmt.Sprintf("t%d", s.TableId)
	}
	return span.String(s)
}

func fmtMode(m heartbeatpb.Mode) string {
	if m == heartbeatpb.ModeRedo {
		return "redo"
	}
	return "default"
}

func fmtEnvelope(env *heartbeatpb.Envelope) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s->%s epoch=%d inc=%d seq=%d ", env.From, env.To, env.Epoch, env.Incarnation, env.Seq)
	switch body := env.Body.(type) {
	case *heartbeatpb.Envelope_BootstrapRequest:
		fmt.Fprintf(&b, "bootstrap-request tables=%d redo=%v", len(body.BootstrapRequest.Config.Tables),
			body.BootstrapRequest.Config.Redo)
	case *heartbeatpb.Envelope_HeartbeatResponse:
		var ids []string
		for _, id := range body.HeartbeatResponse.Finished {
			ids = append(ids, fmt.Sprintf("%d.%d", id.Epoch, id.Seq))
		}
		fmt.Fprintf(&b, "heartbeat-response finished=[%s] checkpoint=%d", strings.Join(ids, " "),
			body.HeartbeatResponse.CheckpointTs)
		if body.HeartbeatResponse.SendListing {
			b.WriteString(" send-listing")
		}
	case *heartbeatpb.Envelope_Schedule:
		b.WriteString("schedule")
		for _, r := range body.Schedule.Requests {
			fmt.Fprintf(&b, "\n  %v %v op=%d.%d d=%d.%d %s %s start=%d", r.Action, r.OperatorType,
				r.Operator.Id.Epoch, r.Operator.Id.Seq, r.Config.Id.Hi, r.Config.Id.Lo,
				fmtSpan(r.Config.Span), fmtMode(r.Config.Mode), r.Config.StartTs)
		}
	}
	return b.String()
}

// parseStatus reads "<state> t<table> d=<hi>.<lo> cp=<ts> [redo] [err=<word>]".
func parseStatus(t testing.TB, line string) heartbeatpb.DispatcherStatus {
	f := strings.Fields(line)
	if len(f) < 4 {
		t.Fatalf("bad status line %q", line)
	}
	st := heartbeatpb.DispatcherStatus{}
	switch f[0] {
	case "working":
		st.State = heartbeatpb.StateWorking
	case "stopped":
		st.State = heartbeatpb.StateStopped
	case "removed":
		st.State = heartbeatpb.StateRemoved
	case "prepared":
		st.State = heartbeatpb.StatePrepared
	default:
		t.Fatalf("bad state in %q", line)
	}
	table, err := strconv.ParseInt(strings.TrimPrefix(f[1], "t"), 10, 64)
	if err != nil {
		t.Fatalf("bad table in %q", line)
	}
	st.Span = span.TableSpan(table)
	var hi, lo uint64
	if _, err := fmt.Sscanf(f[2], "d=%d.%d", &hi, &lo); err != nil {
		t.Fatalf("bad dispatcher in %q", line)
	}
	st.Id = heartbeatpb.DispatcherID{Hi: hi, Lo: lo}
	if _, err := fmt.Sscanf(f[3], "cp=%d", &st.CheckpointTs); err != nil {
		t.Fatalf("bad checkpoint in %q", line)
	}
	for _, opt := range f[4:] {
		switch {
		case opt == "redo":
			st.Mode = heartbeatpb.ModeRedo
		case strings.HasPrefix(opt, "err="):
			st.Error = strings.TrimPrefix(opt, "err=")
		default:
			t.Fatalf("bad option %q in %q", opt, line)
		}
	}
	return st
}

func parseStatuses(t testing.TB, input string) []heartbeatpb.DispatcherStatus {
	var out []heartbeatpb.DispatcherStatus
	for _, line := range strings.Split(input, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, parseStatus(t, line))
		}
	}
	return out
}

// ready prints Ready, hands schedule requests to the fake nodes and advances. The checkpoint
// is then written at once, as a runner's writer would report it a moment later: the messages
// printed carry the checkpoint persisted before this Ready, never the one it asks for.
func (e *env) ready() string {
	rd := e.m.Ready()
	var b strings.Builder
	if rd.Checkpoint > 0 {
		fmt.Fprintf(&b, "persist checkpoint %d\n", rd.Checkpoint)
	}
	for _, n := range rd.Evict {
		fmt.Fprintf(&b, "evict %s\n", n)
	}
	for _, env := range rd.Messages {
		b.WriteString(fmtEnvelope(env) + "\n")
		if s := env.GetSchedule(); s != nil {
			n := e.node(env.To)
			n.inbox = append(n.inbox, s.Requests...)
		}
	}
	e.m.Advance()
	if rd.Checkpoint > 0 {
		e.m.CheckpointPersisted(rd.Checkpoint)
	}
	return b.String()
}

// apply makes node act on its inbox and report what changed in one heartbeat.
func (e *env) apply(t testing.TB, node string, cp uint64) error {
	n := e.node(node)
	var changed []heartbeatpb.DispatcherStatus
	for _, r := range n.inbox {
		switch r.Action {
		case heartbeatpb.ActionCreate:
			st := &heartbeatpb.DispatcherStatus{Id: r.Config.Id, Span: r.Config.Span, Mode: r.Config.Mode,
				State: heartbeatpb.StateWorking, CheckpointTs: max(r.Config.StartTs, cp)}
			n.dispatchers[r.Config.Id] = st
			changed = append(changed, *st)
		case heartbeatpb.ActionPrepare: // a prepared dispatcher owns nothing: reported, not serving
			st := &heartbeatpb.DispatcherStatus{Id: r.Config.Id, Span: r.Config.Span, Mode: r.Config.Mode,
				State: heartbeatpb.StatePrepared, CheckpointTs: r.Config.StartTs}
			n.dispatchers[r.Config.Id] = st
			changed = append(changed, *st)
		case heartbeatpb.ActionRemove:
			if st := n.dispatchers[r.Config.Id]; st != nil {
				if st.State == heartbeatpb.StatePrepared {
					st.State = heartbeatpb.StateRemoved // abandoned: nothing was written
				} else {
					st.State = heartbeatpb.StateStopped
				}
				changed = append(changed, *st)
			}
		}
	}
	n.inbox = nil
	env := e.envelope(node)
	env.Body = &heartbeatpb.Envelope_Heartbeat{Heartbeat: &heartbeatpb.HeartBeatRequest{Statuses: changed}}
	return e.m.Step(env, e.now)
}

func (e *env) status() string {
	st := e.m.Status()
	var b strings.Builder
	fmt.Fprintf(&b, "bootstrapped=%v checkpoint=%d computed=%d spans: absent=%d scheduling=%d replicating=%d\n",
		st.Bootstrapped, st.Checkpoint, st.Computed, st.Spans["absent"], st.Spans["scheduling"], st.Spans["replicating"])
	var nodes []string
	for n := range st.Nodes {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		fmt.Fprintf(&b, "node %s %s spans=%d\n", n, st.Nodes[n], st.NodeSpans[n])
	}
	for _, op := range st.Operators {
		fmt.Fprintf(&b, "op %d.%d %s %s %s %s nodes=%v age=%v\n", op.ID.Epoch, op.ID.Seq, op.Kind,
			strings.Join(op.Spans, ","), op.Mode, op.Phase, op.Nodes, op.Age)
	}
	var kinds []string
	for kind := range st.MadeBeforeBreak {
		kinds = append(kinds, kind)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		fmt.Fprintf(&b, "made-before-break %s=%d\n", kind, st.MadeBeforeBreak[kind])
	}
	return b.String()
}

// spans prints the span DB, one line per span.
func (e *env) spans() string {
	var b strings.Builder
	db := e.m.db
	for i := range db.recs {
		r := &db.recs[i]
		sid := spanID(i)
		fmt.Fprintf(&b, "%s %s %v", fmtSpan(db.spanOf(sid)), fmtMode(r.mode), r.life)
		if db.nodeOf(sid) != "" {
			fmt.Fprintf(&b, " node=%s d=%d.%d", db.nodeOf(sid), r.dispatcher.Hi, r.dispatcher.Lo)
		}
		fmt.Fprintf(&b, " cp=%d", db.cps[i])
		if msg := e.m.errs.of(db, spanID(i)); msg != "" {
			fmt.Fprintf(&b, " error=%s", msg)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (e *env) handle(t *testing.T, td *datadriven.TestData) string {
	var err error
	switch td.Cmd {
	case "new":
		err = e.cmdNew(t, td)
	case "tick":
		d := time.Second
		if td.HasArg("d") {
			var s string
			td.ScanArgs(t, "d", &s)
			if d, err = time.ParseDuration(s); err != nil {
				t.Fatal(err)
			}
		}
		e.now = e.now.Add(d)
		e.m.Tick(e.now)
	case "bootstrap-response":
		var node string
		td.ScanArgs(t, "node", &node)
		env := e.envelope(node)
		if td.HasArg("epoch") {
			td.ScanArgs(t, "epoch", &env.Epoch)
		}
		resp := &heartbeatpb.MaintainerBootstrapResponse{Dispatchers: parseStatuses(t, td.Input)}
		resp.Chunk, resp.RequestId = e.chunkArgs(t, td, node, env)
		env.Body = &heartbeatpb.Envelope_BootstrapResponse{BootstrapResponse: resp}
		err = e.m.Step(env, e.now)
	case "heartbeat":
		err = e.cmdHeartbeat(t, td)
	case "apply":
		var node string
		var cp uint64
		td.ScanArgs(t, "node", &node)
		if td.HasArg("cp") {
			td.ScanArgs(t, "cp", &cp)
		}
		err = e.apply(t, node, cp)
	case "node-joined", "node-left":
		var node string
		td.ScanArgs(t, "node", &node)
		if td.Cmd == "node-joined" {
			e.m.NodeJoined(node, e.now)
		} else {
			e.m.NodeLeft(node, e.now)
		}
	case "ready":
		return e.ready()
	case "status":
		return e.status()
	case "spans":
		return e.spans()
	case "raw":
		err = e.cmdRaw(t, td)
	default:
		t.Fatalf("unknown command %s", td.Cmd)
	}
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	return "ok\n"
}

func (e *env) cmdNew(t *testing.T, td *datadriven.TestData) error {
	var nodes []string
	var tables []int
	td.ScanArgs(t, "nodes", &nodes)
	td.ScanArgs(t, "tables", &tables)
	cfg := Config{ClusterID: "c1", Changefeed: "cf", SelfNode: "self", Epoch: 5,
		ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf", StartTs: 100, Redo: td.HasArg("redo")},
		BootstrapTimeout: 5 * time.Second}
	for _, id := range tables {
		cfg.ChangefeedConfig.Tables = append(cfg.ChangefeedConfig.Tables, heartbeatpb.TableConfig{TableId: int64(id)})
	}
	if td.HasArg("persisted") {
		td.ScanArgs(t, "persisted", &cfg.PersistedCheckpoint)
	}
	if td.HasArg("per-node") {
		td.ScanArgs(t, "per-node", &cfg.MaxOperatorsPerNode)
	}
	cfg.MakeBeforeBreak = td.HasArg("mbb")
	if td.HasArg("batch") {
		td.ScanArgs(t, "batch", &cfg.ScheduleBatch)
	}
	e.nodes = make(map[string]*fakeNode)
	e.now = t0
	m, err := New(cfg, nodes, e.now)
	if err != nil {
		return err
	}
	e.m = m
	return nil
}

func (e *env) cmdHeartbeat(t *testing.T, td *datadriven.TestData) error {
	var node string
	td.ScanArgs(t, "node", &node)
	hb := &heartbeatpb.HeartBeatRequest{Statuses: parseStatuses(t, td.Input), Full: td.HasArg("full"),
		Periodic: td.HasArg("periodic")}
	if td.HasArg("marks") { // marks=(default=300,redo=310)
		var marks []string
		td.ScanArgs(t, "marks", &marks)
		for _, s := range marks {
			mode, ts, _ := strings.Cut(s, "=")
			w := heartbeatpb.Watermark{Mode: heartbeatpb.ModeDefault}
			if mode == "redo" {
				w.Mode = heartbeatpb.ModeRedo
			}
			var err error
			if w.CheckpointTs, err = strconv.ParseUint(ts, 10, 64); err != nil {
				t.Fatalf("bad watermark %q", s)
			}
			hb.Watermarks = append(hb.Watermarks, w)
		}
	}
	if td.HasArg("set") { // the node's set, digested: set=(5.1:working,5.3:stopped), set=() for none
		var set []string
		td.ScanArgs(t, "set", &set)
		hb.Digest = &heartbeatpb.SetDigest{}
		for _, s := range set {
			var id heartbeatpb.DispatcherID
			var state string
			if _, err := fmt.Sscanf(strings.Replace(s, ":", " ", 1), "%d.%d %s", &id.Hi, &id.Lo, &state); err != nil {
				t.Fatalf("bad set entry %q", s)
			}
			st := heartbeatpb.StateWorking
			if state == "stopped" {
				st = heartbeatpb.StateStopped
			}
			hb.Digest.Count++
			hb.Digest.Hash ^= heartbeatpb.DigestEntry(id, st)
		}
	}
	if td.HasArg("journal") {
		var ids []string
		td.ScanArgs(t, "journal", &ids)
		for _, s := range ids {
			var id heartbeatpb.OperatorID
			if _, err := fmt.Sscanf(s, "%d.%d", &id.Epoch, &id.Seq); err != nil {
				t.Fatalf("bad operator id %q", s)
			}
			hb.Journal = append(hb.Journal, id)
		}
	}
	if td.HasArg("reject") {
		var s string
		td.ScanArgs(t, "reject", &s)
		var id heartbeatpb.OperatorID
		if _, err := fmt.Sscanf(s, "%d.%d", &id.Epoch, &id.Seq); err != nil {
			t.Fatalf("bad operator id %q", s)
		}
		hb.Rejections = append(hb.Rejections, heartbeatpb.RequestRejection{OperatorId: id, Reason: "test"})
	}
	env := e.envelope(node)
	if td.HasArg("epoch") {
		td.ScanArgs(t, "epoch", &env.Epoch)
	}
	hb.Chunk, _ = e.chunkArgs(t, td, node, env)
	env.Body = &heartbeatpb.Envelope_Heartbeat{Heartbeat: hb}
	return e.m.Step(env, e.now)
}

// cmdRaw sends deliberately malformed envelopes.
func (e *env) cmdRaw(t *testing.T, td *datadriven.TestData) error {
	var kind string
	td.ScanArgs(t, "kind", &kind)
	env := e.envelope("n1")
	switch kind {
	case "restart":
		var node string
		td.ScanArgs(t, "node", &node)
		e.nodes[node] = &fakeNode{dispatchers: make(map[heartbeatpb.DispatcherID]*heartbeatpb.DispatcherStatus),
			incarnation: e.node(node).incarnation + 1}
		env = e.envelope(node)
		env.Body = &heartbeatpb.Envelope_Heartbeat{Heartbeat: &heartbeatpb.HeartBeatRequest{Full: true}}
	case "nil":
		return e.m.Step(nil, e.now)
	case "no-body":
	case "wrong-cluster":
		env.ClusterId = "other"
		env.Body = &heartbeatpb.Envelope_Heartbeat{Heartbeat: &heartbeatpb.HeartBeatRequest{}}
	case "wrong-changefeed":
		env.Changefeed = "other"
		env.Body = &heartbeatpb.Envelope_Heartbeat{Heartbeat: &heartbeatpb.HeartBeatRequest{}}
	case "unknown-node":
		env.From = "stranger"
		env.Body = &heartbeatpb.Envelope_Heartbeat{Heartbeat: &heartbeatpb.HeartBeatRequest{}}
	case "bad-span":
		env.Body = &heartbeatpb.Envelope_Heartbeat{Heartbeat: &heartbeatpb.HeartBeatRequest{
			Statuses: []heartbeatpb.DispatcherStatus{{State: heartbeatpb.StateWorking,
				Span: heartbeatpb.TableSpan{TableId: 1, StartKey: []byte("z"), EndKey: []byte("a")}}}}}
	case "bad-state":
		env.Body = &heartbeatpb.Envelope_Heartbeat{Heartbeat: &heartbeatpb.HeartBeatRequest{
			Statuses: []heartbeatpb.DispatcherStatus{{State: 42, Span: span.TableSpan(1)}}}}
	case "wrong-body":
		env.Body = &heartbeatpb.Envelope_Schedule{Schedule: &heartbeatpb.ScheduleDispatcherRequests{}}
	case "nil-heartbeat":
		env.Body = &heartbeatpb.Envelope_Heartbeat{}
	default:
		t.Fatalf("unknown raw kind %s", kind)
	}
	return e.m.Step(env, e.now)
}

func TestMaintainer(t *testing.T) {
	settled := 0 // commands after which the maintainer was settled, over every file
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		e := &env{}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			out := e.handle(t, td)
			if e.m != nil {
				settled += e.checkSettled(t, td)
			}
			return out
		})
	})
	if settled == 0 {
		t.Error("no scenario ever settled: the check of Settled against Status tested one side only")
	}
}

// checkSettled fails t when Settled, the server's cheap end-of-failover test, disagrees with
// what Status says (bootstrapped, spans, every one replicating, no operator in flight); it
// returns 1 when settled.
func (e *env) checkSettled(t *testing.T, td *datadriven.TestData) int {
	st := e.m.Status()
	want := st.Bootstrapped && len(st.Operators) == 0 && st.Spans["replicating"] > 0 &&
		st.Spans["absent"] == 0 && st.Spans["scheduling"] == 0
	if got := e.m.Settled(); got != want {
		t.Fatalf("%s: Settled()=%v, Status says %v (bootstrapped=%v spans=%v operators=%d)", td.Pos, got, want,
			st.Bootstrapped, st.Spans, len(st.Operators))
	}
	if want {
		return 1
	}
	return 0
}

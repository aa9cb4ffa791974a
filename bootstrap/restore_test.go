package bootstrap

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

// parseSpan reads t<table> (whole table) or t<table>/<k>:<i>[-<j>] (pieces i..j of the table cut
// into k).
func parseSpan(t testing.TB, s string) heartbeatpb.TableSpan {
	tbl, piece, cut := strings.Cut(strings.TrimPrefix(s, "t"), "/")
	id, err := strconv.ParseInt(tbl, 10, 64)
	if err != nil {
		t.Fatalf("bad span %q", s)
	}
	whole := span.TableSpan(id)
	if !cut {
		return whole
	}
	var k, i, j int
	if n, _ := fmt.Sscanf(piece, "%d:%d-%d", &k, &i, &j); n < 2 {
		t.Fatalf("bad span %q", s)
	} else if n == 2 {
		j = i
	}
	pieces, err := span.Split(whole, k)
	if err != nil {
		t.Fatal(err)
	}
	return heartbeatpb.TableSpan{TableId: id, StartKey: pieces[i].StartKey, EndKey: pieces[j].EndKey}
}

// fmtSpan prints a span back in the parseSpan notation when it is one; hex otherwise.
func fmtSpan(s heartbeatpb.TableSpan) string {
	whole := span.TableSpan(s.TableId)
	if span.Equal(s, whole) {
		return fmt.Sprintf("t%d", s.TableId)
	}
	for _, k := range []int{2, 3, 4, 8} {
		pieces, err := span.Split(whole, k)
		if err != nil {
			continue
		}
		for i := range pieces {
			for j := i; j < len(pieces); j++ {
				if string(pieces[i].StartKey) == string(s.StartKey) && string(pieces[j].EndKey) == string(s.EndKey) {
					if i == j {
						return fmt.Sprintf("t%d/%d:%d", s.TableId, k, i)
					}
					return fmt.Sprintf("t%d/%d:%d-%d", s.TableId, k, i, j)
				}
			}
		}
	}
	return span.String(s)
}

func fmtMode(m heartbeatpb.Mode) string {
	if m == heartbeatpb.ModeRedo {
		return "redo"
	}
	return "default"
}

func parseDID(t testing.TB, s string) heartbeatpb.DispatcherID {
	var id heartbeatpb.DispatcherID
	if _, err := fmt.Sscanf(s, "%d.%d", &id.Hi, &id.Lo); err != nil {
		t.Fatalf("bad id %q", s)
	}
	return id
}

// kv reads key=value fields after the positional ones.
func kv(fields []string) map[string]string {
	out := make(map[string]string)
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			out[f] = ""
			continue
		}
		out[k] = v
	}
	return out
}

// parseResponse reads one node's response, a line per record:
//
//	working|stopped|removed|prepared <span> d=<id> cp=<ts> [redo]
//	bad <span> d=<id>                 (a span with start >= end)
//	journal <create|remove|prepare> <kind> op=<id> src=<placements> dst=<placements> half=<id>
//	        [start=<ts>] [stage=applied] [cp=<final>] [redo] [mbb]
//	merge op=<id> src=<placements> dst=<placement> [stage=<0-3>] [cp=<merged ts>]
//
// A placement list is <node>/<id>@<span>[,...]; half names the placement the request is for.
func parseResponse(t testing.TB, input string) *heartbeatpb.MaintainerBootstrapResponse {
	resp := &heartbeatpb.MaintainerBootstrapResponse{}
	for _, line := range strings.Split(input, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "working", "stopped", "removed", "prepared", "bad":
			resp.Dispatchers = append(resp.Dispatchers, parseStatus(t, f))
		case "journal":
			resp.Operators = append(resp.Operators, parseJournal(t, f))
		case "merge":
			a := kv(f[1:])
			d := parseDesc(t, "merge", a)
			m := heartbeatpb.InFlightMerge{Request: heartbeatpb.MergeDispatcherRequest{
				MergedId: d.Targets[0].DispatcherId, MergedSpan: d.Targets[0].Span, Mode: d.Mode, Operator: d}}
			for _, s := range d.Sources {
				m.Request.SourceIds = append(m.Request.SourceIds, s.DispatcherId)
			}
			stage, _ := strconv.Atoi(a["stage"])
			m.Stage = heartbeatpb.MergeStage(stage)
			m.MergedCheckpointTs, _ = strconv.ParseUint(a["cp"], 10, 64)
			resp.MergeOperators = append(resp.MergeOperators, m)
		default:
			t.Fatalf("bad response line %q", line)
		}
	}
	return resp
}

func parseStatus(t testing.TB, f []string) heartbeatpb.DispatcherStatus {
	a := kv(f[2:])
	st := heartbeatpb.DispatcherStatus{Id: parseDID(t, a["d"]), Span: parseSpan(t, f[1])}
	st.CheckpointTs, _ = strconv.ParseUint(a["cp"], 10, 64)
	if _, ok := a["redo"]; ok {
		st.Mode = heartbeatpb.ModeRedo
	}
	switch f[0] {
	case "working":
		st.State = heartbeatpb.StateWorking
	case "stopped":
		st.State = heartbeatpb.StateStopped
	case "removed":
		st.State = heartbeatpb.StateRemoved
	case "prepared":
		st.State = heartbeatpb.StatePrepared
	case "bad":
		st.State = heartbeatpb.StateWorking
		st.Span.StartKey, st.Span.EndKey = st.Span.EndKey, st.Span.StartKey
	}
	return st
}

var kinds = map[string]heartbeatpb.OperatorType{"add": heartbeatpb.OpAdd, "remove": heartbeatpb.OpRemove,
	"move": heartbeatpb.OpMove, "split": heartbeatpb.OpSplit, "merge": heartbeatpb.OpMerge, "unknown": heartbeatpb.OpUnknown}

func parsePlacements(t testing.TB, s string) []heartbeatpb.SpanPlacement {
	var out []heartbeatpb.SpanPlacement
	if s == "" {
		return nil
	}
	for _, p := range strings.Split(s, ",") {
		nd, sp, ok := strings.Cut(p, "@")
		node, did, ok2 := strings.Cut(nd, "/")
		if !ok || !ok2 {
			t.Fatalf("bad placement %q", p)
		}
		out = append(out, heartbeatpb.SpanPlacement{NodeId: node, DispatcherId: parseDID(t, did), Span: parseSpan(t, sp)})
	}
	return out
}

func parseDesc(t testing.TB, kind string, a map[string]string) heartbeatpb.OperatorDescriptor {
	k, ok := kinds[kind]
	if !ok {
		t.Fatalf("bad kind %q", kind)
	}
	opID := parseDID(t, a["op"])
	d := heartbeatpb.OperatorDescriptor{Id: heartbeatpb.OperatorID{Epoch: opID.Hi, Seq: opID.Lo}, Kind: k,
		Sources: parsePlacements(t, a["src"]), Targets: parsePlacements(t, a["dst"])}
	if _, ok := a["redo"]; ok {
		d.Mode = heartbeatpb.ModeRedo
	}
	if k == heartbeatpb.OpAdd {
		d.StartTs, _ = strconv.ParseUint(a["start"], 10, 64)
	}
	_, d.MakeBeforeBreak = a["mbb"]
	return d
}

func parseJournal(t testing.TB, f []string) heartbeatpb.InFlightOperator {
	a := kv(f[3:])
	d := parseDesc(t, f[2], a)
	op := heartbeatpb.InFlightOperator{}
	r := &op.Request
	r.Operator, r.OperatorType, r.Config.Mode = d, d.Kind, d.Mode
	switch f[1] {
	case "remove":
		r.Action = heartbeatpb.ActionRemove
	case "prepare":
		r.Action = heartbeatpb.ActionPrepare
	}
	half := parseDID(t, a["half"])
	for _, p := range append(append([]heartbeatpb.SpanPlacement(nil), d.Sources...), d.Targets...) {
		if p.DispatcherId == half {
			r.Config.Id, r.Config.Span = half, p.Span
		}
	}
	r.Config.StartTs, _ = strconv.ParseUint(a["start"], 10, 64)
	if a["stage"] == "applied" {
		op.Stage = heartbeatpb.StageApplied
	}
	op.FinalCheckpointTs, _ = strconv.ParseUint(a["cp"], 10, 64)
	return op
}

func fmtPlacement(p heartbeatpb.SpanPlacement) string {
	return fmt.Sprintf("%s/%d.%d@%s", p.NodeId, p.DispatcherId.Hi, p.DispatcherId.Lo, fmtSpan(p.Span))
}

func fmtOutgoing(o operator.Outgoing) string {
	if o.Merge != nil {
		return fmt.Sprintf("-> %s merge into %d.%d %s", o.Node, o.Merge.MergedId.Hi, o.Merge.MergedId.Lo, fmtSpan(o.Merge.MergedSpan))
	}
	r := o.Schedule
	return fmt.Sprintf("-> %s %v d=%d.%d %s start=%d", o.Node, r.Action, r.Config.Id.Hi, r.Config.Id.Lo,
		fmtSpan(r.Config.Span), r.Config.StartTs)
}

func fmtPlan(p *Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "checkpoint %d\n", p.Checkpoint)
	for _, r := range p.Replicating {
		fmt.Fprintf(&b, "replicating %s %s node=%s d=%d.%d cp=%d\n", fmtSpan(r.Span), fmtMode(r.Mode), r.Node,
			r.Dispatcher.Hi, r.Dispatcher.Lo, r.Checkpoint)
	}
	for _, a := range p.Absent {
		fmt.Fprintf(&b, "absent %s %s resume=%d\n", fmtSpan(a.Span), fmtMode(a.Mode), a.ResumeTs)
	}
	for _, r := range p.Resumed {
		id, phase := r.Op.ID(), ""
		if ph, ok := r.Op.(operator.Phaser); ok {
			phase = ph.Phase()
		}
		fmt.Fprintf(&b, "resumed op=%d.%d %v phase=%s\n", id.Epoch, id.Seq, r.Op.Type(), phase)
		for _, h := range r.Held {
			state := "unbound"
			if h.Bound {
				state = "bound"
			}
			fmt.Fprintf(&b, "  held %s %s %s node=%s d=%d.%d cp=%d\n", fmtSpan(h.Span), fmtMode(h.Mode), state, h.Node,
				h.Dispatcher.Hi, h.Dispatcher.Lo, h.Checkpoint)
		}
		for _, o := range r.Op.Resend(time.Time{}) {
			fmt.Fprintf(&b, "  %s\n", fmtOutgoing(o))
		}
	}
	for _, c := range p.Completed {
		fmt.Fprintf(&b, "completed op=%d.%d %v %v\n", c.ID.Epoch, c.ID.Seq, c.Kind, c.Outcome)
	}
	for _, c := range p.Conflicts {
		fmt.Fprintf(&b, "conflict %s %s node=%s d=%d.%d cp=%d reason=%v\n", fmtSpan(c.Span), fmtMode(c.Mode), c.Node,
			c.Dispatcher.Hi, c.Dispatcher.Lo, c.Checkpoint, c.Reason)
	}
	for _, a := range p.Acks {
		fmt.Fprintf(&b, "ack node=%s op=%d.%d\n", a.Node, a.Operator.Epoch, a.Operator.Seq)
	}
	for _, u := range p.Unresolved {
		fmt.Fprintf(&b, "unresolved %v node=%s %s %s d=%d.%d op=%d.%d cp=%d: %s\n", u.Kind, u.Node, fmtSpan(u.Span),
			fmtMode(u.Mode), u.Dispatcher.Hi, u.Dispatcher.Lo, u.Operator.Epoch, u.Operator.Seq, u.Checkpoint, u.Detail)
	}
	return b.String()
}

func TestRestore(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var cfg *heartbeatpb.ChangefeedConfig
		responses := make(map[string]*heartbeatpb.MaintainerBootstrapResponse)
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			switch td.Cmd {
			case "config":
				var tables []int
				td.ScanArgs(t, "tables", &tables)
				cfg = &heartbeatpb.ChangefeedConfig{Id: "cf", Redo: td.HasArg("redo")}
				if td.HasArg("start") {
					td.ScanArgs(t, "start", &cfg.StartTs)
				}
				if td.HasArg("noid") {
					cfg.Id = ""
				}
				for _, id := range tables {
					cfg.Tables = append(cfg.Tables, heartbeatpb.TableConfig{TableId: int64(id)})
				}
				responses = make(map[string]*heartbeatpb.MaintainerBootstrapResponse)
				return "ok\n"
			case "response":
				var node string
				td.ScanArgs(t, "node", &node)
				resp := parseResponse(t, td.Input)
				if td.HasArg("cp") {
					td.ScanArgs(t, "cp", &resp.CheckpointTs)
				}
				responses[node] = resp
				return "ok\n"
			case "restore":
				var persisted uint64
				if td.HasArg("persisted") {
					td.ScanArgs(t, "persisted", &persisted)
				}
				c := cfg
				if td.HasArg("nilconfig") {
					c = nil
				}
				plan, err := Restore(c, responses, persisted)
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				again, _ := Restore(c, responses, persisted)
				if fmtPlan(again) != fmtPlan(plan) {
					t.Fatalf("restore is not deterministic")
				}
				return fmtPlan(plan)
			}
			t.Fatalf("unknown command %s", td.Cmd)
			return ""
		})
	})
}

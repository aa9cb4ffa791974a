package bootstrap

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/tidemark/tidemark/heartbeatpb"
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
//	working|stopped|removed <span> d=<id> cp=<ts> [redo]
//	bad <span> d=<id>                 (a span with start >= end)
//	journal <create|remove> <span> d=<id> op=<id> [stage=applied] [cp=<final>] [redo]
//	merge <span> d=<id> op=<id>
func parseResponse(t testing.TB, input string) *heartbeatpb.MaintainerBootstrapResponse {
	resp := &heartbeatpb.MaintainerBootstrapResponse{}
	for _, line := range strings.Split(input, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "working", "stopped", "removed", "bad":
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
			case "bad":
				st.State = heartbeatpb.StateWorking
				st.Span.StartKey, st.Span.EndKey = st.Span.EndKey, st.Span.StartKey
			}
			resp.Dispatchers = append(resp.Dispatchers, st)
		case "journal":
			a := kv(f[3:])
			op := heartbeatpb.InFlightOperator{}
			r := &op.Request
			r.Config.Id, r.Config.Span = parseDID(t, a["d"]), parseSpan(t, f[2])
			if _, ok := a["redo"]; ok {
				r.Config.Mode = heartbeatpb.ModeRedo
			}
			if f[1] == "remove" {
				r.Action = heartbeatpb.ActionRemove
			}
			opID := parseDID(t, a["op"])
			r.Operator.Id = heartbeatpb.OperatorID{Epoch: opID.Hi, Seq: opID.Lo}
			r.OperatorType = heartbeatpb.OpMove
			if a["stage"] == "applied" {
				op.Stage = heartbeatpb.StageApplied
			}
			op.FinalCheckpointTs, _ = strconv.ParseUint(a["cp"], 10, 64)
			resp.Operators = append(resp.Operators, op)
		case "merge":
			a := kv(f[2:])
			m := heartbeatpb.InFlightMerge{}
			m.Request.MergedSpan, m.Request.MergedId = parseSpan(t, f[1]), parseDID(t, a["d"])
			opID := parseDID(t, a["op"])
			m.Request.Operator.Id = heartbeatpb.OperatorID{Epoch: opID.Hi, Seq: opID.Lo}
			resp.MergeOperators = append(resp.MergeOperators, m)
		default:
			t.Fatalf("bad response line %q", line)
		}
	}
	return resp
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
	for _, c := range p.Conflicts {
		fmt.Fprintf(&b, "conflict %s %s node=%s d=%d.%d cp=%d reason=%v\n", fmtSpan(c.Span), fmtMode(c.Mode), c.Node,
			c.Dispatcher.Hi, c.Dispatcher.Lo, c.Checkpoint, c.Reason)
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

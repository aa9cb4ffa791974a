package operator

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// t0 is the fixed start of every scenario's clock.
var t0 = time.UnixMilli(1_700_000_000_000)

// fmtSpan prints whole-table spans as t<id> and others with hex keys.
func fmtSpan(s heartbeatpb.TableSpan) string {
	if span.Equal(s, span.TableSpan(s.TableId)) {
		return fmt.Sprintf("t%d", s.TableId)
	}
	return span.String(s)
}

func fmtDID(d heartbeatpb.DispatcherID) string { return fmt.Sprintf("%d.%d", d.Hi, d.Lo) }

func fmtOut(out []Outgoing) string {
	var b strings.Builder
	for _, o := range out {
		if o.Merge != nil {
			b.WriteString(fmtMerge(o))
			continue
		}
		r := o.Schedule
		fmt.Fprintf(&b, "-> %s %v %v op=%d.%d d=%s span=%s mode=%v start=%d",
			o.Node, r.Action, r.OperatorType, r.Operator.Id.Epoch, r.Operator.Id.Seq,
			fmtDID(r.Config.Id), fmtSpan(r.Config.Span), r.Config.Mode, r.Config.StartTs)
		mbb := ""
		if r.Operator.MakeBeforeBreak {
			mbb = " mbb"
		}
		fmt.Fprintf(&b, " desc[%v src=%s dst=%s start=%d%s]\n", r.Operator.Kind,
			fmtPlacements(r.Operator.Sources), fmtPlacements(r.Operator.Targets), r.Operator.StartTs, mbb)
	}
	return b.String()
}

func fmtPlacements(ps []heartbeatpb.SpanPlacement) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, p.NodeId+"/"+fmtDID(p.DispatcherId))
	}
	return "(" + strings.Join(parts, ",") + ")"
}

func fmtResult(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "finished: %v", r.Outcome)
	if r.MadeBeforeBreak {
		b.WriteString(" made-before-break")
	}
	for _, x := range r.Bind {
		fmt.Fprintf(&b, " bind(%s %v -> %s/%s @%d)", fmtSpan(x.Span), x.Mode, x.Node, fmtDID(x.Dispatcher), x.Checkpoint)
	}
	for _, x := range r.Absent {
		fmt.Fprintf(&b, " absent(%s %v @%d)", fmtSpan(x.Span), x.Mode, x.Checkpoint)
	}
	for _, x := range r.Retire {
		fmt.Fprintf(&b, " retire(%s %v)", fmtSpan(x.Span), x.Mode)
	}
	return b.String()
}

func parseDID(t testing.TB, s string) heartbeatpb.DispatcherID {
	hi, lo, ok := strings.Cut(s, ".")
	h, err1 := strconv.ParseUint(hi, 10, 64)
	l, err2 := strconv.ParseUint(lo, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("bad dispatcher id %q", s)
	}
	return heartbeatpb.DispatcherID{Hi: h, Lo: l}
}

func parseState(t testing.TB, s string) heartbeatpb.ComponentState {
	switch s {
	case "working":
		return heartbeatpb.StateWorking
	case "stopped":
		return heartbeatpb.StateStopped
	case "removed":
		return heartbeatpb.StateRemoved
	case "prepared":
		return heartbeatpb.StatePrepared
	}
	t.Fatalf("bad state %q", s)
	return 0
}

func parseMode(td *datadriven.TestData) heartbeatpb.Mode {
	if td.HasArg("redo") {
		return heartbeatpb.ModeRedo
	}
	return heartbeatpb.ModeDefault
}

func argStr(t testing.TB, td *datadriven.TestData, key, def string) string {
	if !td.HasArg(key) {
		return def
	}
	var v string
	td.ScanArgs(t, key, &v)
	return v
}

func argU64(t testing.TB, td *datadriven.TestData, key string, def uint64) uint64 {
	if !td.HasArg(key) {
		return def
	}
	var v uint64
	td.ScanArgs(t, key, &v)
	return v
}

// opEnv drives one operator through a scenario.
type opEnv struct {
	op  Operator
	now time.Time
}

func (e *opEnv) handle(t testing.TB, td *datadriven.TestData) string {
	var out []Outgoing
	table := int64(argU64(t, td, "table", 1))
	s := span.TableSpan(table)
	mode := parseMode(td)
	id := heartbeatpb.OperatorID{Epoch: 7, Seq: argU64(t, td, "seq", 1)}
	var err error
	switch td.Cmd {
	case "add":
		e.op, err = NewAdd(id, s, mode, argStr(t, td, "dest", ""), parseDID(t, argStr(t, td, "d", "7.1")),
			argU64(t, td, "start", 100), e.now)
	case "remove":
		e.op, err = NewRemove(id, s, mode, argStr(t, td, "origin", ""), parseDID(t, argStr(t, td, "d", "7.1")),
			argU64(t, td, "cp", 100), e.now)
	case "move":
		e.op, err = NewMove(id, s, mode, argStr(t, td, "origin", ""), parseDID(t, argStr(t, td, "from", "7.1")),
			argStr(t, td, "dest", ""), parseDID(t, argStr(t, td, "to", "7.2")), argU64(t, td, "cp", 100), e.now)
		if m, ok := e.op.(*Move); ok && td.HasArg("mbb") {
			m.WithPrepare()
		}
	case "split", "merge":
		e.op, err = newSplitMerge(t, td, id, mode, e.now)
	case "status":
		st := &heartbeatpb.DispatcherStatus{
			Id: parseDID(t, argStr(t, td, "d", "")), Span: s, Mode: mode,
			State: parseState(t, argStr(t, td, "state", "working")), CheckpointTs: argU64(t, td, "cp", 0),
		}
		out = e.op.OnStatus(argStr(t, td, "node", ""), st, e.now)
	case "reject":
		// A node's refusal always names the dispatcher of the request it refuses
		// (dispatchermanager reject), so the scenario must too.
		if !td.HasArg("d") {
			t.Fatalf("%s: reject without d=: no node refuses without naming the dispatcher", td.Pos)
		}
		rej := &heartbeatpb.RequestRejection{OperatorId: e.op.ID(), Reason: "test",
			DispatcherId: parseDID(t, argStr(t, td, "d", ""))}
		out = e.op.(RejectionHandler).OnRejected(argStr(t, td, "node", ""), rej, e.now)
	case "node-removed":
		out = e.op.OnNodeRemoved(argStr(t, td, "node", ""), e.now)
	case "table-removed":
		out = e.op.OnTableRemoved(table, e.now)
	case "resend":
		out = e.op.Resend(e.now)
	case "abort": // what the controller does when the phase timed out
		a, ok := e.op.(Aborter)
		if !ok {
			return "cannot abort\n"
		}
		out = a.Abort(e.now)
	default:
		t.Fatalf("unknown command %s", td.Cmd)
	}
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	if td.Cmd == "add" || td.Cmd == "remove" || td.Cmd == "move" || td.Cmd == "split" || td.Cmd == "merge" {
		out = e.op.Start(e.now)
	}
	var b strings.Builder
	b.WriteString(fmtOut(out))
	fmt.Fprintf(&b, "phase: %s\n", e.op.(Phaser).Phase())
	if r, done := e.op.Finished(); done {
		b.WriteString(fmtResult(r) + "\n")
	}
	return b.String()
}

func TestOperators(t *testing.T) {
	datadriven.Walk(t, "testdata/ops", func(t *testing.T, path string) {
		e := &opEnv{now: t0}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			return e.handle(t, td)
		})
	})
}

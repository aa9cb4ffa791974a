package dispatchermanager

import (
	"fmt"
	"strings"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
)

// buildEnvelope turns a command and its input lines into an envelope from a maintainer.
// Header args: from (m1), to (n1), epoch (5), inc (= epoch), seq (1), cluster (c1), cf (cf1).
func buildEnvelope(cmd string, args map[string]string, input string) (*heartbeatpb.Envelope, error) {
	get := func(k, def string) string {
		if v, ok := args[k]; ok {
			return v
		}
		return def
	}
	epoch := mustUint(get("epoch", "5"))
	env := &heartbeatpb.Envelope{
		ClusterId: get("cluster", "c1"), Changefeed: get("cf", "cf1"),
		From: get("from", "m1"), To: get("to", "n1"),
		Epoch: epoch, Incarnation: mustUint(get("inc", fmt.Sprint(epoch))), Seq: mustUint(get("seq", "1")),
	}
	lines := nonEmptyLines(input)
	switch cmd {
	case "bootstrap":
		cfg := heartbeatpb.ChangefeedConfig{Id: get("cfid", "cf1"), StartTs: mustUint(get("start", "100")), Redo: args["redo"] == "true"}
		for _, l := range lines {
			_, a := lineArgs(l)
			cfg.Tables = append(cfg.Tables, heartbeatpb.TableConfig{TableId: int64(mustUint(a["id"])), Load: mustUint(a["load"])})
		}
		env.Body = &heartbeatpb.Envelope_BootstrapRequest{BootstrapRequest: &heartbeatpb.MaintainerBootstrapRequest{
			Config: cfg, RequestId: mustUint(get("req", "0"))}}
	case "schedule":
		b := &heartbeatpb.ScheduleDispatcherRequests{}
		for _, l := range lines {
			b.Requests = append(b.Requests, buildSchedule(l))
		}
		env.Body = &heartbeatpb.Envelope_Schedule{Schedule: b}
	case "merge":
		b := &heartbeatpb.MergeDispatcherRequests{}
		for _, l := range lines {
			b.Requests = append(b.Requests, buildMerge(l))
		}
		env.Body = &heartbeatpb.Envelope_Merge{Merge: b}
	case "response":
		resp := &heartbeatpb.HeartBeatResponse{CheckpointTs: mustUint(get("checkpoint", "0")),
			SendListing: get("listing", "false") == "true"}
		if f := get("finished", ""); f != "" {
			for _, op := range strings.Split(f, ",") {
				resp.Finished = append(resp.Finished, mustOp(op))
			}
		}
		env.Body = &heartbeatpb.Envelope_HeartbeatResponse{HeartbeatResponse: resp}
	case "deliver":
		switch get("body", "none") {
		case "none":
		case "heartbeat":
			env.Body = &heartbeatpb.Envelope_Heartbeat{Heartbeat: &heartbeatpb.HeartBeatRequest{}}
		case "bootstrap-response":
			env.Body = &heartbeatpb.Envelope_BootstrapResponse{BootstrapResponse: &heartbeatpb.MaintainerBootstrapResponse{}}
		case "nil-schedule":
			env.Body = &heartbeatpb.Envelope_Schedule{}
		case "nil-response":
			env.Body = &heartbeatpb.Envelope_HeartbeatResponse{}
		default:
			return nil, fmt.Errorf("unknown body %q", get("body", ""))
		}
	}
	return env, nil
}

// buildSchedule reads "create|remove d=5-1 span=1:- op=5.1 kind=add [ts=100] [mode=redo] [dkind=..] [dmode=..]".
func buildSchedule(line string) heartbeatpb.ScheduleDispatcherRequest {
	verb, a := lineArgs(line)
	action := map[string]heartbeatpb.ScheduleAction{"create": heartbeatpb.ActionCreate, "remove": heartbeatpb.ActionRemove,
		"prepare": heartbeatpb.ActionPrepare, "bogus": heartbeatpb.ScheduleAction(9)}[verb]
	mode := parseMode(a["mode"])
	kind := kinds[a["kind"]]
	desc := heartbeatpb.OperatorDescriptor{Id: mustOp(a["op"]), Kind: kind, Mode: mode}
	if k, ok := a["dkind"]; ok {
		desc.Kind = kinds[k]
	}
	_, desc.MakeBeforeBreak = a["mbb"]
	ts := uint64(0)
	if v, ok := a["ts"]; ok {
		ts = mustUint(v)
	}
	return heartbeatpb.ScheduleDispatcherRequest{
		Config:       heartbeatpb.DispatcherConfig{Id: mustID(a["d"]), Span: parseSpan(a["span"]), StartTs: ts, Mode: mode},
		Action:       action,
		OperatorType: kind,
		Operator:     desc,
	}
}

// buildMerge reads "merge d=5-9 span=1:- sources=5-1,5-2 op=5.3 [mode=redo]".
func buildMerge(line string) heartbeatpb.MergeDispatcherRequest {
	_, a := lineArgs(line)
	mode := parseMode(a["mode"])
	r := heartbeatpb.MergeDispatcherRequest{
		MergedId: mustID(a["d"]), MergedSpan: parseSpan(a["span"]), Mode: mode,
		Operator: heartbeatpb.OperatorDescriptor{Id: mustOp(a["op"]), Kind: heartbeatpb.OpMerge, Mode: mode},
	}
	for _, s := range strings.Split(a["sources"], ",") {
		r.SourceIds = append(r.SourceIds, mustID(s))
	}
	return r
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func printEnvelope(b *strings.Builder, env *heartbeatpb.Envelope) {
	fmt.Fprintf(b, "%s->%s cluster=%s cf=%s epoch=%d inc=%d seq=%d ", env.From, env.To, env.ClusterId,
		env.Changefeed, env.Epoch, env.Incarnation, env.Seq)
	switch body := env.Body.(type) {
	case *heartbeatpb.Envelope_Heartbeat:
		hb := body.Heartbeat
		fmt.Fprintf(b, "heartbeat full=%t periodic=%t%s\n", hb.Full, hb.Periodic, fmtChunk(hb.Chunk, 0))
		if len(hb.Watermarks) > 0 {
			marks := make([]string, len(hb.Watermarks))
			for i, w := range hb.Watermarks {
				marks[i] = fmt.Sprintf("%s=%d", dispatcher.ModeName(w.Mode), w.CheckpointTs)
			}
			fmt.Fprintf(b, "  watermarks %s\n", strings.Join(marks, " "))
		}
		if hb.Digest != nil {
			fmt.Fprintf(b, "  set count=%d\n", hb.Digest.Count)
		}
		for _, st := range hb.Statuses {
			fmt.Fprintf(b, "  %s\n", fmtStatus(st))
		}
		if len(hb.Journal) > 0 {
			ops := make([]string, len(hb.Journal))
			for i, op := range hb.Journal {
				ops[i] = fmtOp(op)
			}
			fmt.Fprintf(b, "  journal %s\n", strings.Join(ops, ","))
		}
		for _, r := range hb.Rejections {
			fmt.Fprintf(b, "  rejected op=%s d=%s: %s\n", fmtOp(r.OperatorId), dispatcher.FormatID(r.DispatcherId), r.Reason)
		}
	case *heartbeatpb.Envelope_BootstrapResponse:
		r := body.BootstrapResponse
		fmt.Fprintf(b, "bootstrap-response checkpoint=%d%s\n", r.CheckpointTs, fmtChunk(r.Chunk, r.RequestId))
		for _, st := range r.Dispatchers {
			fmt.Fprintf(b, "  %s\n", fmtStatus(st))
		}
		for _, op := range r.Operators {
			fmt.Fprintf(b, "  %s\n", fmtInFlight(op))
		}
		for _, mg := range r.MergeOperators {
			fmt.Fprintf(b, "  %s\n", fmtMerge(mg))
		}
	default:
		fmt.Fprintf(b, "%T\n", body)
	}
}

// fmtChunk prints what places an answer's piece (nothing for a whole answer to no numbered request).
func fmtChunk(ch *heartbeatpb.Chunk, req uint64) string {
	s := ""
	if req != 0 {
		s = fmt.Sprintf(" req=%d", req)
	}
	if ch != nil {
		s += fmt.Sprintf(" chunk=%d/%d", ch.Index, ch.Total)
	}
	return s
}

func fmtStatus(st heartbeatpb.DispatcherStatus) string {
	s := fmt.Sprintf("status %s %s %s %s cp=%d load=%d", dispatcher.FormatID(st.Id), fmtSpan(st.Span),
		dispatcher.ModeName(st.Mode), strings.TrimPrefix(st.State.String(), "State"), st.CheckpointTs, st.Load)
	if st.Error != "" {
		s += fmt.Sprintf(" error=%q", st.Error)
	}
	return s
}

func fmtInFlight(op heartbeatpb.InFlightOperator) string {
	r := op.Request
	return fmt.Sprintf("operator %s %s %s %s %s %s ts=%d %s final=%d", fmtOp(r.Operator.Id),
		strings.TrimPrefix(r.OperatorType.String(), "Op"), strings.TrimPrefix(r.Action.String(), "Action"),
		dispatcher.FormatID(r.Config.Id), fmtSpan(r.Config.Span), dispatcher.ModeName(r.Config.Mode),
		r.Config.StartTs, strings.TrimPrefix(op.Stage.String(), "Stage"), op.FinalCheckpointTs)
}

func fmtMerge(mg heartbeatpb.InFlightMerge) string {
	r := mg.Request
	srcs := make([]string, len(r.SourceIds))
	for i, id := range r.SourceIds {
		srcs[i] = dispatcher.FormatID(id)
	}
	return fmt.Sprintf("merge %s into %s %s %s sources=%s %s ts=%d", fmtOp(r.Operator.Id),
		dispatcher.FormatID(r.MergedId), fmtSpan(r.MergedSpan), dispatcher.ModeName(r.Mode),
		strings.Join(srcs, ","), strings.TrimPrefix(mg.Stage.String(), "Merge"), mg.MergedCheckpointTs)
}

func printSnapshot(s ManagerSnapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "epoch=%d maintainer=%s bootstrapped=%t checkpoint=%d\n", s.Epoch, s.Maintainer,
		s.Bootstrapped, s.CheckpointTs)
	for _, st := range s.Dispatchers {
		fmt.Fprintf(&b, "%s\n", fmtStatus(st))
	}
	for _, op := range s.Operators {
		fmt.Fprintf(&b, "%s\n", fmtInFlight(op))
	}
	for _, mg := range s.Merges {
		fmt.Fprintf(&b, "%s\n", fmtMerge(mg))
	}
	return b.String()
}

package dispatchermanager

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// fakeDispatcher reports whatever checkpoint the test sets; it checks the manager's contract:
// no Poll after Stop, no Stop after Close.
type fakeDispatcher struct {
	cfg              heartbeatpb.DispatcherConfig
	checkpoint, load uint64
	stopped, closed  bool
	f                *fakeFactory
}

func (d *fakeDispatcher) ID() heartbeatpb.DispatcherID { return d.cfg.Id }
func (d *fakeDispatcher) Span() heartbeatpb.TableSpan  { return d.cfg.Span }
func (d *fakeDispatcher) Mode() heartbeatpb.Mode       { return d.cfg.Mode }

func (d *fakeDispatcher) Poll(time.Time) (uint64, uint64) {
	if d.stopped || d.closed {
		d.f.violations = append(d.f.violations, "poll after stop of "+dispatcher.FormatID(d.cfg.Id))
	}
	return d.checkpoint, d.load
}

func (d *fakeDispatcher) Stop(time.Time) (uint64, error) {
	if d.f.failStop {
		return 0, errors.New("injected stop failure")
	}
	if d.closed {
		d.f.violations = append(d.f.violations, "stop after close of "+dispatcher.FormatID(d.cfg.Id))
	}
	d.stopped = true
	return d.checkpoint, nil
}

func (d *fakeDispatcher) Close() error { d.closed = true; return nil }

// fakeFactory creates fakeDispatchers and can be told to fail.
type fakeFactory struct {
	all                          map[heartbeatpb.DispatcherID]*fakeDispatcher
	failNew, failFlush, failStop bool
	flushes                      int
	violations                   []string
	abandoned                    int  // prepared dispatchers closed uncommitted
	cold                         bool // prepare cold dispatchers, warmed by the "warm" command
	prepared                     map[heartbeatpb.DispatcherID]*fakePrepared
}

var errInjected = errors.New("injected create failure")

func (f *fakeFactory) New(cfg heartbeatpb.DispatcherConfig, table heartbeatpb.TableConfig) (dispatcher.Dispatcher, error) {
	if f.failNew {
		return nil, errors.New("injected create failure")
	}
	d := &fakeDispatcher{cfg: cfg, checkpoint: cfg.StartTs, load: table.Load, f: f}
	f.all[cfg.Id] = d
	return d, nil
}

func (f *fakeFactory) Flush() error {
	if f.failFlush {
		return errors.New("injected flush failure")
	}
	f.flushes++
	return nil
}

// harness drives one manager (cluster c1, node n1, changefeed cf1) from a datadriven file.
type harness struct {
	m     *Manager
	f     *fakeFactory
	now   time.Time
	query LeaderQuery // the last one handed out
}

// leaderReply builds the answer to q from "epoch= leader=" or "failed".
func leaderReply(q LeaderQuery, args map[string]string) LeaderReply {
	r := LeaderReply{Query: q, Leader: args["leader"]}
	if v, ok := args["epoch"]; ok {
		r.Epoch = mustUint(v)
	}
	if _, ok := args["failed"]; ok {
		r.Err = errors.New("injected read failure")
	}
	return r
}

func TestManagerDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := &harness{}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			out, err := h.run(td)
			if err != nil {
				t.Fatalf("%s: %v", td.Pos, err)
			}
			if h.f != nil && len(h.f.violations) > 0 {
				t.Fatalf("%s: dispatcher contract violated: %v", td.Pos, h.f.violations)
			}
			if h.m != nil {
				if err := tableInvariants(&h.m.table); err != nil {
					t.Fatalf("%s: %v", td.Pos, err)
				}
			}
			return out
		})
	})
}

// tableInvariants checks what the table keeps incrementally against a recomputation: the
// digest is the XOR over every dispatcher, and each mode's watermark bound is at most the
// durable checkpoint of every working dispatcher of that mode (a watermark above one would
// let the maintainer advance its span past what is durable).
func tableInvariants(t *dispatcherTable) error {
	var hash uint64
	for _, e := range t.dispatchers {
		hash ^= heartbeatpb.DigestEntry(e.id, e.state)
		if e.state != heartbeatpb.StateWorking {
			continue
		}
		if !t.seen[e.mode] || t.lo[e.mode] > e.durable {
			return fmt.Errorf("watermark bound of %s is %d (seen %v), above working %s durable at %d",
				e.mode, t.lo[e.mode], t.seen[e.mode], dispatcher.FormatID(e.id), e.durable)
		}
	}
	if hash != t.hash {
		return fmt.Errorf("kept digest %x, recomputed %x over %d dispatchers", t.hash, hash, len(t.dispatchers))
	}
	return nil
}

func (h *harness) run(td *datadriven.TestData) (string, error) {
	if td.Cmd != "new" && h.m == nil {
		return "", errors.New("run new first")
	}
	args := argMap(td)
	switch td.Cmd {
	case "new":
		h.f = &fakeFactory{all: map[heartbeatpb.DispatcherID]*fakeDispatcher{}}
		h.now = time.UnixMilli(1_700_000_000_000)
		cfg := Config{ClusterID: "c1", NodeID: "n1", Changefeed: "cf1", Incarnation: 1,
			HeartbeatInterval: time.Second, Factory: h.f}
		if _, ok := args["noprepare"]; ok {
			cfg.Factory = plainFactory{h.f}
		}
		if v, ok := args["chunk-bytes"]; ok {
			cfg.ChunkBytes = int(mustUint(v))
		}
		if v, ok := args["poll-interval-ms"]; ok {
			cfg.PollInterval = time.Duration(mustUint(v)) * time.Millisecond
		}
		if v, ok := args["poll-per-dispatcher-ms"]; ok {
			cfg.PollPerDispatcher = time.Duration(mustUint(v)) * time.Millisecond
		}
		if v, ok := args["unhealthy-after-ms"]; ok {
			cfg.UnhealthyAfter = time.Duration(mustUint(v)) * time.Millisecond
		}
		m, err := New(cfg, h.now)
		h.m = m
		if err == nil {
			// The registry: every maintainer the files use is a registered node unless said.
			nodes := "m1,m2,m3,n1"
			if v, ok := args["nodes"]; ok {
				nodes = v
			}
			m.SetNodes(strings.Split(nodes, ","))
		}
		return result(err), nil
	case "set-nodes":
		h.m.SetNodes(strings.Split(args["nodes"], ","))
		return "ok\n", nil
	case "set-epoch":
		return result(h.m.SetEpoch(mustUint(args["epoch"]), args["maintainer"], h.now)), nil
	case "leader-query":
		q, ok := h.m.LeaderQuery(h.now)
		if !ok {
			return "no query\n", nil
		}
		h.query = q
		return fmt.Sprintf("query %d\n", q.ID), nil
	case "held":
		// What waits for etcd's word, oldest first.
		var b strings.Builder
		for _, h := range h.m.gate.held {
			fmt.Fprintf(&b, "held from=%s epoch=%d seq=%d query=%d\n", h.env.From, h.env.Epoch, h.env.Seq, h.query)
		}
		if b.Len() == 0 {
			return "nothing held\n", nil
		}
		return b.String(), nil
	case "leader-reply":
		r := leaderReply(h.query, args)
		return result(h.m.OnLeaderReply(r, h.now)), nil
	case "tick":
		ms := int64(100)
		if v, ok := args["ms"]; ok {
			ms = int64(mustUint(v))
		}
		h.now = h.now.Add(time.Duration(ms) * time.Millisecond)
		h.m.Tick(h.now)
		return h.ready(), nil
	case "report":
		h.m.Report(h.now)
		return h.ready(), nil
	case "ready":
		return h.ready(), nil
	case "snapshot":
		out := printSnapshot(h.m.Snapshot())
		if h.f.abandoned > 0 {
			out += fmt.Sprintf("abandoned prepared: %d\n", h.f.abandoned)
		}
		return out, nil
	case "health":
		hl := h.m.SinkHealth(h.now)
		since := "-"
		if hl.Failing {
			since = hl.Since.Sub(time.UnixMilli(1_700_000_000_000)).String()
		}
		return fmt.Sprintf("failing=%t since=%s unhealthy=%t errors=%d cause=%q\n",
			hl.Failing, since, hl.Unhealthy, hl.Errors, hl.Cause), nil
	case "advance":
		d, ok := h.f.all[mustID(args["d"])]
		if !ok {
			return "", fmt.Errorf("no dispatcher %s", args["d"])
		}
		d.checkpoint = mustUint(args["ts"])
		if v, ok := args["load"]; ok {
			d.load = mustUint(v)
		}
		return "ok\n", nil
	case "fail":
		h.f.failNew, h.f.failFlush, h.f.failStop = args["new"] == "true", args["flush"] == "true", args["stop"] == "true"
		return "ok\n", nil
	case "close":
		return result(h.m.Close()), nil
	case "cold":
		h.f.cold = args["on"] == "true"
		return "ok\n", nil
	case "warm":
		p, ok := h.f.prepared[mustID(args["d"])]
		if !ok {
			return "", fmt.Errorf("no prepared dispatcher %s", args["d"])
		}
		p.cold = false
		return "ok\n", nil
	case "bootstrap", "schedule", "merge", "response", "deliver":
		env, err := buildEnvelope(td.Cmd, args, td.Input)
		if err != nil {
			return "", err
		}
		return result(h.m.Step(env, h.now)), nil
	}
	return "", fmt.Errorf("unknown command %q", td.Cmd)
}

func (h *harness) ready() string {
	var b strings.Builder
	for _, env := range h.m.Ready() {
		printEnvelope(&b, env)
	}
	h.m.Advance()
	if b.Len() == 0 {
		return "no messages\n"
	}
	return b.String()
}

func result(err error) string {
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	return "ok\n"
}

func argMap(td *datadriven.TestData) map[string]string {
	out := map[string]string{}
	for _, a := range td.CmdArgs {
		out[a.Key] = strings.Join(a.Vals, ",")
	}
	return out
}

func lineArgs(line string) (string, map[string]string) {
	fields := strings.Fields(line)
	out := map[string]string{}
	if len(fields) == 0 {
		return "", out
	}
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		out[k] = v
	}
	return fields[0], out
}

func mustUint(s string) uint64 {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("bad number %q", s))
	}
	return v
}

func mustID(s string) heartbeatpb.DispatcherID {
	id, err := dispatcher.ParseID(s)
	if err != nil {
		panic(err)
	}
	return id
}

func mustOp(s string) heartbeatpb.OperatorID {
	a, b, _ := strings.Cut(s, ".")
	return heartbeatpb.OperatorID{Epoch: mustUint(a), Seq: mustUint(b)}
}

// parseSpan reads "<table>:<start>-<end>": start and end are suffixes of the table key, empty
// meaning the table's own start or end; "bad" gives an inverted span.
func parseSpan(s string) heartbeatpb.TableSpan {
	if s == "bad" {
		t := span.TableSpan(1)
		return heartbeatpb.TableSpan{TableId: 1, StartKey: t.EndKey, EndKey: t.StartKey}
	}
	tbl, rest, _ := strings.Cut(s, ":")
	start, end, _ := strings.Cut(rest, "-")
	id := int64(mustUint(tbl))
	t := span.TableSpan(id)
	out := t
	if start != "" {
		out.StartKey = append(append([]byte{}, t.StartKey...), start...)
	}
	if end != "" {
		out.EndKey = append(append([]byte{}, t.StartKey...), end...)
	}
	return out
}

func fmtSpan(s heartbeatpb.TableSpan) string {
	t := span.TableSpan(s.TableId)
	suffix := func(k []byte, whole []byte) string {
		if string(k) == string(whole) {
			return ""
		}
		if strings.HasPrefix(string(k), string(t.StartKey)) {
			return string(k[len(t.StartKey):])
		}
		return fmt.Sprintf("%x", k)
	}
	return fmt.Sprintf("%d:%s-%s", s.TableId, suffix(s.StartKey, t.StartKey), suffix(s.EndKey, t.EndKey))
}

func parseMode(s string) heartbeatpb.Mode {
	if s == "" {
		return heartbeatpb.ModeDefault
	}
	if v, err := strconv.Atoi(s); err == nil {
		return heartbeatpb.Mode(v)
	}
	m, err := dispatcher.ParseMode(s)
	if err != nil {
		panic(err)
	}
	return m
}

var kinds = map[string]heartbeatpb.OperatorType{
	"add": heartbeatpb.OpAdd, "remove": heartbeatpb.OpRemove, "move": heartbeatpb.OpMove,
	"split": heartbeatpb.OpSplit, "merge": heartbeatpb.OpMerge, "unknown": heartbeatpb.OpUnknown,
	"bogus": heartbeatpb.OperatorType(42),
}

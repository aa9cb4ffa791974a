package sim

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// inflight is one envelope on its way.
type inflight struct {
	at  time.Time
	seq uint64
	env *heartbeatpb.Envelope
}

// network holds the envelopes in flight, ordered by delivery time then send order. A seeded rand
// decides each envelope's fate at send time: dropped, duplicated, delayed (which reorders).
type network struct {
	q   []inflight
	seq uint64
}

func (nw *network) push(f inflight) {
	nw.seq++
	f.seq = nw.seq
	i := sort.Search(len(nw.q), func(i int) bool {
		return nw.q[i].at.After(f.at) || (nw.q[i].at.Equal(f.at) && nw.q[i].seq > f.seq)
	})
	nw.q = append(nw.q, inflight{})
	copy(nw.q[i+1:], nw.q[i:])
	nw.q[i] = f
}

// popDue returns the next envelope due by now.
func (nw *network) popDue(now time.Time) (*heartbeatpb.Envelope, bool) {
	if len(nw.q) == 0 || nw.q[0].at.After(now) {
		return nil, false
	}
	env := nw.q[0].env
	nw.q = nw.q[1:]
	return env, true
}

// send puts env on the network, subject to partitions and the fault-phase loss model.
func (c wire) send(env *heartbeatpb.Envelope) {
	if c.cut(env.From) || c.cut(env.To) {
		c.trace.add(c.now, "drop(partition)", env)
		return
	}
	if c.chunkFaulted(env) {
		return
	}
	drop, dup := 0.0, 0.0
	if c.faults {
		drop, dup = c.cfg.DropRate, c.cfg.DupRate
	}
	if c.rng.Float64() < drop {
		c.trace.add(c.now, "drop", env)
		return
	}
	copies := 1
	if c.rng.Float64() < dup {
		copies = 2
	}
	for i := 0; i < copies; i++ {
		d := time.Duration(c.rng.Int63n(int64(c.cfg.MaxDelay) + 1))
		c.net.push(inflight{at: c.now.Add(d), env: env})
	}
}

func (c wire) cut(id string) bool {
	n := c.nodes[id]
	return n != nil && n.partitioned
}

// trace keeps the last events of a run for the failure report. Envelopes are kept as pointers
// and formatted only when a report is printed: formatting every delivery would dominate the run.
type trace struct {
	buf  []traceEntry
	next int
	full bool
}

type traceEntry struct {
	at   time.Time
	what string
	env  *heartbeatpb.Envelope
}

func newTrace(n int) *trace { return &trace{buf: make([]traceEntry, n)} }

func (t *trace) add(at time.Time, what string, env *heartbeatpb.Envelope) {
	t.buf[t.next] = traceEntry{at: at, what: what, env: env}
	t.next++
	if t.next == len(t.buf) {
		t.next, t.full = 0, true
	}
}

func (c *Cluster) tracef(format string, args ...any) {
	c.trace.add(c.now, fmt.Sprintf(format, args...), nil)
}

// String prints the kept events, oldest first.
func (t *trace) String() string {
	var b strings.Builder
	start, n := 0, t.next
	if t.full {
		start, n = t.next, len(t.buf)
	}
	for i := 0; i < n; i++ {
		e := t.buf[(start+i)%len(t.buf)]
		fmt.Fprintf(&b, "%8.1fs %s", e.at.Sub(t0).Seconds(), e.what)
		if e.env != nil {
			b.WriteString(" ")
			b.WriteString(fmtEnvelope(e.env))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func fmtEnvelope(env *heartbeatpb.Envelope) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s->%s e%d i%d #%d ", env.From, env.To, env.Epoch, env.Incarnation, env.Seq)
	switch body := env.Body.(type) {
	case *heartbeatpb.Envelope_BootstrapRequest:
		b.WriteString("bootstrap-request")
	case *heartbeatpb.Envelope_BootstrapResponse:
		r := body.BootstrapResponse
		fmt.Fprintf(&b, "bootstrap-response req=%d dispatchers=%d ops=%d merges=%d", r.RequestId, len(r.Dispatchers),
			len(r.Operators), len(r.MergeOperators))
		if ch := r.Chunk; ch != nil {
			fmt.Fprintf(&b, " chunk=%d/%d", ch.Index, ch.Total)
		}
	case *heartbeatpb.Envelope_HeartbeatResponse:
		fmt.Fprintf(&b, "ack %v cp=%d", fmtOps(body.HeartbeatResponse.Finished), body.HeartbeatResponse.CheckpointTs)
	case *heartbeatpb.Envelope_Heartbeat:
		hb := body.Heartbeat
		fmt.Fprintf(&b, "heartbeat full=%v", hb.Full)
		if ch := hb.Chunk; ch != nil {
			fmt.Fprintf(&b, " chunk=%d/%d", ch.Index, ch.Total)
		}
		for _, st := range hb.Statuses {
			fmt.Fprintf(&b, " [%d.%d %s %v cp=%d]", st.Id.Hi, st.Id.Lo, shortSpan(st.Span), st.State, st.CheckpointTs)
		}
		for _, r := range hb.Rejections {
			fmt.Fprintf(&b, " reject(%d.%d: %s)", r.OperatorId.Epoch, r.OperatorId.Seq, r.Reason)
		}
	case *heartbeatpb.Envelope_Schedule:
		b.WriteString("schedule")
		for _, r := range body.Schedule.Requests {
			fmt.Fprintf(&b, " [%v %v op=%d.%d d=%d.%d %s start=%d]", r.Action, r.OperatorType, r.Operator.Id.Epoch,
				r.Operator.Id.Seq, r.Config.Id.Hi, r.Config.Id.Lo, shortSpan(r.Config.Span), r.Config.StartTs)
		}
	case *heartbeatpb.Envelope_Merge:
		b.WriteString("merge")
		for _, r := range body.Merge.Requests {
			fmt.Fprintf(&b, " [op=%d.%d into %d.%d %s]", r.Operator.Id.Epoch, r.Operator.Id.Seq, r.MergedId.Hi,
				r.MergedId.Lo, shortSpan(r.MergedSpan))
		}
	}
	return b.String()
}

func fmtOps(ids []heartbeatpb.OperatorID) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%d.%d", id.Epoch, id.Seq)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// shortSpan prints t<table> for a whole table, else t<table>[start,end) with the keys' tails.
func shortSpan(s heartbeatpb.TableSpan) string {
	return fmt.Sprintf("t%d[%x,%x)", s.TableId, tail(s.StartKey), tail(s.EndKey))
}

func tail(k []byte) []byte {
	if len(k) > 9 {
		return k[9:]
	}
	return nil
}

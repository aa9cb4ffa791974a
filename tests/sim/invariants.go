package sim

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/dispatcher/sinkcheck"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
	"github.com/tidemark/tidemark/ts"
)

func spanOfTable(id int64) heartbeatpb.TableSpan { return span.TableSpan(id) }

// checkExclusive is I1 for node n: none of its working dispatchers shares a key with a working
// dispatcher of the same mode on another node that is up. A frozen node's dispatchers do not
// count: its lease guard stopped them.
func (c checker) checkExclusive(n *node) error {
	for _, id := range c.order {
		o := c.nodes[id]
		if o == n || o.state != nodeUp {
			continue
		}
		for _, a := range n.working {
			for _, b := range o.working {
				if a.Mode == b.Mode && span.Overlap(a.Span, b.Span) {
					return c.violation("I1: %s %d.%d %s and %s %d.%d %s both work (%v)", n.id, a.Id.Hi, a.Id.Lo,
						shortSpan(a.Span), o.id, b.Id.Hi, b.Id.Lo, shortSpan(b.Span), a.Mode)
				}
			}
		}
	}
	return nil
}

// checkLeader is I4: no two operators of the current maintainer hold overlapping spans of one
// mode (right after a failover too: restored operators included).
func (c checker) checkLeader() error {
	if c.leader == nil {
		return nil
	}
	ops := c.leader.m.InFlight()
	if len(ops) < 2 {
		return nil
	}
	type held struct {
		op   heartbeatpb.OperatorID
		mode heartbeatpb.Mode
		s    heartbeatpb.TableSpan
	}
	var all []held
	for _, o := range ops {
		for _, ref := range o.Spans {
			all = append(all, held{o.ID, ref.Mode, ref.Span.Span()})
		}
	}
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			a, b := all[i], all[j]
			if a.op != b.op && a.mode == b.mode && span.Overlap(a.s, b.s) {
				return c.violation("I4: operators %d.%d and %d.%d both hold %s (%v)", a.op.Epoch, a.op.Seq,
					b.op.Epoch, b.op.Seq, shortSpan(a.s), a.mode)
			}
		}
	}
	return nil
}

// Converge stops the faults (partitions heal, zombies die, crashed nodes come back as their
// restarts fall due) and checks I6 within d: every span replicating exactly once on the nodes
// with nothing left in any journal, no operator in flight, balanced, the checkpoint close to
// the clock; then the sinks must be free of overlaps (I1) and gaps (I2), and the data they hold
// must be the modelled source's events (I8, source.go).
func (c *Cluster) Converge(d time.Duration) error {
	c.faults = false
	for _, id := range c.order {
		c.nodes[id].partitioned = false
	}
	for _, mt := range c.maints {
		if mt.state == maintZombie || mt.state == maintPaused {
			mt.state = maintDead
		}
	}
	// Converged means quiet: checked every simulated second, the first quiet moment counts.
	end := c.now.Add(d)
	for {
		if err := c.RunFor(time.Second); err != nil {
			return err
		}
		why := c.check.notConverged()
		if why == "" {
			if err := c.check.checkSinks(); err != nil {
				return err
			}
			return c.check.checkData()
		}
		if !c.now.Before(end) {
			return c.violation("I6: %s", why)
		}
	}
}

// notConverged says why the cluster is not quiet yet, or "". It builds no trace: it runs every
// simulated second of the quiet phase.
func (c checker) notConverged() string {
	if c.leader == nil {
		return "no maintainer"
	}
	st := c.leader.m.Status()
	if !st.Bootstrapped || st.Spans["absent"] != 0 || st.Spans["scheduling"] != 0 || len(st.Operators) != 0 {
		return fmt.Sprintf("not converged: bootstrapped=%v spans=%v operators=%v", st.Bootstrapped, st.Spans, st.Operators)
	}
	lo, hi := int(^uint(0)>>1), 0
	for _, n := range st.NodeSpans {
		lo, hi = min(lo, n), max(hi, n)
	}
	if len(st.NodeSpans) > 0 && hi-lo > 1 {
		return fmt.Sprintf("unbalanced: %v", st.NodeSpans)
	}
	working := map[groupKey][]heartbeatpb.TableSpan{}
	for _, id := range c.order {
		n := c.nodes[id]
		if n.state != nodeUp {
			return fmt.Sprintf("node %s is %v after the quiet phase", id, n.state)
		}
		snap := n.dm.Snapshot()
		if len(snap.Operators) > 0 || len(snap.Merges) > 0 {
			var ops []string
			for _, op := range snap.Operators {
				r := op.Request
				ops = append(ops, fmt.Sprintf("%v %v op=%d.%d d=%d.%d %s %v", r.OperatorType, r.Action, r.Operator.Id.Epoch,
					r.Operator.Id.Seq, r.Config.Id.Hi, r.Config.Id.Lo, shortSpan(r.Config.Span), op.Stage))
			}
			for _, m := range snap.Merges {
				ops = append(ops, fmt.Sprintf("merge op=%d.%d %v", m.Request.Operator.Id.Epoch, m.Request.Operator.Id.Seq, m.Stage))
			}
			return fmt.Sprintf("%s still journals %v", id, ops)
		}
		for _, d := range snap.Dispatchers {
			if d.State != heartbeatpb.StateWorking {
				return fmt.Sprintf("%s still holds %d.%d in state %v", id, d.Id.Hi, d.Id.Lo, d.State)
			}
			g := groupKey{d.Span.TableId, d.Mode}
			working[g] = append(working[g], d.Span)
		}
	}
	for _, t := range c.tables {
		for _, mode := range c.modes() {
			if cov := span.CheckCoverage(t.TableId, working[groupKey{t.TableId, mode}]); !cov.Exact() {
				return fmt.Sprintf("table %d %v not covered exactly once: gaps %d overlaps %d", t.TableId, mode,
					len(cov.Gaps), len(cov.Overlaps))
			}
		}
	}
	if lag := ts.Lag(c.persisted, c.now); lag > 10*time.Second {
		return fmt.Sprintf("persisted checkpoint lags the clock by %v", lag)
	}
	return ""
}

// checkSinks runs the sink checker over every durable record of every node incarnation.
func (c checker) checkSinks() error {
	var recs []dispatcher.Record
	for _, s := range c.track.sinks {
		_ = s.Flush()
		recs = append(recs, s.mem.Flushed()...)
	}
	ids := make([]int64, 0, len(c.tables))
	for _, t := range c.tables {
		ids = append(ids, t.TableId)
	}
	rep, err := sinkcheck.Check(recs, c.startTs, ids...)
	if err != nil {
		return c.violation("sinkcheck: %v", err)
	}
	if err := rep.Err(); err != nil {
		return c.violation("sinks: %v", err)
	}
	return nil
}

// working returns every working dispatcher on up nodes, sorted by span.
func (c checker) allWorking() []heartbeatpb.DispatcherStatus {
	var out []heartbeatpb.DispatcherStatus
	for _, id := range c.order {
		if n := c.nodes[id]; n.state == nodeUp {
			out = append(out, n.working...)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if c := span.Compare(out[i].Span, out[j].Span); c != 0 {
			return c < 0
		}
		return bytes.Compare([]byte{byte(out[i].Mode)}, []byte{byte(out[j].Mode)}) < 0
	})
	return out
}

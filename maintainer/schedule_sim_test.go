package maintainer

import (
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/dispatcher/sinkcheck"
	"github.com/tidemark/tidemark/dispatchermanager"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/runner"
	"github.com/tidemark/tidemark/span"
	"github.com/tidemark/tidemark/ts"
)

// liveCluster is one maintainer and real dispatcher managers over simulated dispatchers, all
// driven from one goroutine by a manual clock; envelopes go straight from Ready to Step.
type liveCluster struct {
	t     *testing.T
	m     *Maintainer
	now   time.Time
	nodes map[string]*dispatchermanager.Manager
	sinks map[string]*dispatcher.MemSink
	names []string
}

func newLiveCluster(t *testing.T, cfg Config, nodes ...string) *liveCluster {
	c := &liveCluster{t: t, now: t0, nodes: map[string]*dispatchermanager.Manager{},
		sinks: map[string]*dispatcher.MemSink{}, names: nodes}
	for i, n := range nodes {
		sink := dispatcher.NewMemSink()
		dm := newSimManager(t, cfg, n, uint64(i+1), 0, sink, c.now)
		dm.SetNodes(nodes)
		if err := dm.SetEpoch(cfg.Epoch, cfg.SelfNode, c.now); err != nil {
			t.Fatal(err)
		}
		c.nodes[n], c.sinks[n] = dm, sink
	}
	m, err := New(cfg, nodes, c.now)
	if err != nil {
		t.Fatal(err)
	}
	c.m = m
	return c
}

// step advances the clock by 100ms and lets every core act and every message arrive.
func (c *liveCluster) step() {
	c.t.Helper()
	c.now = c.now.Add(100 * time.Millisecond)
	c.m.Tick(c.now)
	c.flushMaintainer()
	for _, n := range c.names {
		dm := c.nodes[n]
		dm.Tick(c.now)
		if err := runner.Manager(dm.Ready(), dm, toLiveMaintainer{c}); err != nil {
			c.t.Fatal(err)
		}
		c.flushMaintainer()
	}
	c.checkI4()
}

func (c *liveCluster) flushMaintainer() {
	c.t.Helper()
	if err := runner.Maintainer(runner.Ready(c.m.Ready()), c.m, liveStore{}, toLiveNodes{c}); err != nil {
		c.t.Fatal(err)
	}
}

// toLiveNodes and toLiveMaintainer deliver every envelope at once; any refusal is a bug here (no
// loss, no failover, no stale peer). Two types, as the maintainer shares node n1 with a manager.
type toLiveNodes struct{ c *liveCluster }

func (w toLiveNodes) Send(env *heartbeatpb.Envelope) error {
	if err := w.c.nodes[env.To].Step(env, w.c.now); err != nil {
		return fmt.Errorf("node %s step: %w", env.To, err)
	}
	return nil
}

type toLiveMaintainer struct{ c *liveCluster }

func (w toLiveMaintainer) Send(env *heartbeatpb.Envelope) error {
	if err := w.c.m.Step(env, w.c.now); err != nil {
		return fmt.Errorf("maintainer step from %s: %w", env.From, err)
	}
	return nil
}

// liveStore: the checkpoint persists, and no node here is ever silent enough to be evicted.
type liveStore struct{}

func (liveStore) PersistCheckpoint(uint64) (runner.Written, error) { return runner.Persisted, nil }
func (liveStore) Evict(node string) error                          { return fmt.Errorf("maintainer evicts %s", node) }

// checkI4: no two in-flight operators hold overlapping spans of one mode.
func (c *liveCluster) checkI4() {
	c.t.Helper()
	ops := c.m.ctl.List(c.now)
	for i := range ops {
		for j := i + 1; j < len(ops); j++ {
			for _, a := range ops[i].Spans {
				for _, b := range ops[j].Spans {
					if a.Mode == b.Mode && span.Overlap(a.Span.Span(), b.Span.Span()) {
						c.c4fail(ops[i], ops[j], a, b)
					}
				}
			}
		}
	}
}

func (c *liveCluster) c4fail(x, y operator.Info, a, b operator.SpanRef) {
	c.t.Fatalf("I4: operators %v (%v) and %v (%v) overlap on %v / %v mode %v", x.ID, x.Kind, y.ID, y.Kind, a.Span, b.Span, a.Mode)
}

func (c *liveCluster) run(d time.Duration) {
	for end := c.now.Add(d); c.now.Before(end); {
		c.step()
	}
}

func (c *liveCluster) records(keep func(int64) bool) []dispatcher.Record {
	var out []dispatcher.Record
	for _, n := range c.names {
		for _, r := range c.sinks[n].Records() {
			if keep(r.Table) {
				out = append(out, r)
			}
		}
	}
	return out
}

// TestSplitMergeBalanceLive runs a skewed-load changefeed with redo on over three real dispatcher
// managers: hot tables split, their pieces (cold) move together and merge, cold tables balance,
// a table is removed and another added; the sinks show no double ownership or gap, no two
// operators ever overlap, and the schedule converges.
func TestSplitMergeBalanceLive(t *testing.T) {
	startTs := ts.FromTime(t0)
	cfg := Config{ClusterID: "c1", Changefeed: "cf", SelfNode: "n1", Epoch: 5,
		ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf", StartTs: startTs, Redo: true,
			SplitLoadThreshold: 2000, MergeLoadThreshold: 700, SplitPieces: 4},
		SplitMergeCooldown: 2 * time.Second}
	// Tables 1 and 2 are hot (2400 > 2000): split into four pieces of 600, which are cold (< 700)
	// and merge pairwise into 1200 (at most 3/4 of the split threshold), then stay.
	for id := int64(1); id <= 10; id++ {
		load := uint64(100)
		if id <= 2 {
			load = 2400
		}
		cfg.ChangefeedConfig.Tables = append(cfg.ChangefeedConfig.Tables, heartbeatpb.TableConfig{TableId: id, Load: load})
	}
	c := newLiveCluster(t, cfg, "n1", "n2", "n3")
	c.run(20 * time.Second)

	// Table 10 leaves, table 11 joins.
	next := *c.m.cfg.ChangefeedConfig
	next.Tables = append(append([]heartbeatpb.TableConfig(nil), next.Tables[:9]...), heartbeatpb.TableConfig{TableId: 11, Load: 100})
	addedAt := c.now
	if err := c.m.UpdateConfig(&next, c.now); err != nil {
		t.Fatal(err)
	}
	c.run(20 * time.Second)

	st := c.m.Status()
	for _, kind := range []string{"OpAdd", "OpMove", "OpSplit", "OpMerge", "OpRemove"} {
		if st.OperatorsDone[kind+"/succeeded"] == 0 {
			t.Errorf("no %s succeeded: %v", kind, st.OperatorsDone)
		}
	}
	// Four splits (two tables, two modes) and eight merges (pairs of pieces): no flapping.
	if st.OperatorsDone["OpSplit/succeeded"] != 4 || st.OperatorsDone["OpMerge/succeeded"] != 8 {
		t.Errorf("split/merge counts %v: want exactly 4 and 8", st.OperatorsDone)
	}
	if len(st.Operators) != 0 || st.Spans["absent"] != 0 || st.Spans["scheduling"] != 0 {
		t.Fatalf("not converged: %v, operators %+v", st.Spans, st.Operators)
	}
	c.checkNodesClean(t)
	c.checkLayout(t, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 11})
	for i, r := range c.m.db.recs {
		if !r.retired() && r.table == 10 {
			t.Fatalf("span of removed table 10 left: %s", span.String(c.m.db.spanOf(spanID(i))))
		}
	}

	// Sinks: the tables present throughout from the start ts, table 11 from when it was added.
	rep, err := sinkcheck.Check(c.records(func(t int64) bool { return t != 10 && t != 11 }), startTs, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Err() != nil {
		t.Fatal(rep.Err())
	}
	if rep.Bound < ts.FromTime(c.now.Add(-2*time.Second)) {
		t.Fatalf("sinks only reached %d", rep.Bound)
	}
	rep, err = sinkcheck.Check(c.records(func(t int64) bool { return t == 11 }), ts.FromTime(addedAt.Add(-time.Second)), 11)
	if err != nil || rep.Overlaps != nil || rep.Records == 0 {
		t.Fatalf("table 11: %v %+v", err, rep)
	}
	t.Logf("done %v; sink: %d records, %d repeats", st.OperatorsDone, rep.Records, len(rep.Repeats))
}

// checkLayout: every table is covered exactly in both modes, hot tables ended in two pieces of
// 1200 (split into four, merged pairwise), both modes of every key range on one node (placement,
// splits, merges and balance keep them together), and the span counts per mode within one.
func (c *liveCluster) checkLayout(t *testing.T, tables []int64) {
	t.Helper()
	type key struct {
		s    string
		mode heartbeatpb.Mode
	}
	where := map[key]string{}
	perMode := map[heartbeatpb.Mode]map[string]int{}
	byTable := map[int64]map[heartbeatpb.Mode][]heartbeatpb.TableSpan{}
	for i := range c.m.db.recs {
		r := &c.m.db.recs[i]
		if r.retired() {
			continue
		}
		if r.life != lifeReplicating {
			t.Fatalf("span %s %v is %v", span.String(c.m.db.spanOf(spanID(i))), r.mode, r.life)
		}
		where[key{span.String(c.m.db.spanOf(spanID(i))), r.mode}] = c.m.db.nodeOf(spanID(i))
		if perMode[r.mode] == nil {
			perMode[r.mode] = map[string]int{}
		}
		perMode[r.mode][c.m.db.nodeOf(spanID(i))]++
		if byTable[c.m.db.spanOf(spanID(i)).TableId] == nil {
			byTable[c.m.db.spanOf(spanID(i)).TableId] = map[heartbeatpb.Mode][]heartbeatpb.TableSpan{}
		}
		byTable[c.m.db.spanOf(spanID(i)).TableId][r.mode] = append(byTable[c.m.db.spanOf(spanID(i)).TableId][r.mode], c.m.db.spanOf(spanID(i)))
	}
	for _, id := range tables {
		for _, mode := range []heartbeatpb.Mode{heartbeatpb.ModeDefault, heartbeatpb.ModeRedo} {
			cov := span.CheckCoverage(id, byTable[id][mode])
			if !cov.Exact() {
				t.Fatalf("table %d %v not covered exactly: %+v", id, mode, cov)
			}
			if want := map[bool]int{true: 2, false: 1}[id <= 2]; len(byTable[id][mode]) != want {
				t.Errorf("table %d %v has %d spans, want %d", id, mode, len(byTable[id][mode]), want)
			}
		}
	}
	split := 0
	for k, n := range where {
		if k.mode == heartbeatpb.ModeDefault && where[key{k.s, heartbeatpb.ModeRedo}] != n {
			split++
		}
	}
	if split > 0 {
		t.Errorf("%d key ranges have their modes on different nodes", split)
	}
	for mode, counts := range perMode {
		lo, hi := 1<<30, 0
		for _, n := range c.names {
			lo, hi = min(lo, counts[n]), max(hi, counts[n])
		}
		if hi-lo > 1 {
			t.Fatalf("mode %v unbalanced: %v", mode, counts)
		}
	}
	nodes := make([]string, 0, len(perMode[0]))
	for n := range perMode[0] {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	t.Logf("layout per node (default/redo): %s", fmtCounts(nodes, perMode))
}

func fmtCounts(nodes []string, perMode map[heartbeatpb.Mode]map[string]int) string {
	s := ""
	for _, n := range nodes {
		s += fmt.Sprintf("%s=%d/%d ", n, perMode[heartbeatpb.ModeDefault][n], perMode[heartbeatpb.ModeRedo][n])
	}
	return s
}

// checkNodesClean: every node holds only working dispatchers of spans the maintainer knows there,
// and no journal entry or merge is left.
func (c *liveCluster) checkNodesClean(t *testing.T) {
	t.Helper()
	for _, n := range c.names {
		snap := c.nodes[n].Snapshot()
		if len(snap.Operators) != 0 || len(snap.Merges) != 0 {
			t.Fatalf("node %s journal not empty: %d entries, %d merges", n, len(snap.Operators), len(snap.Merges))
		}
		for _, d := range snap.Dispatchers {
			sid, ok := c.m.db.byDispatcher.get(d.Id)
			if d.State != heartbeatpb.StateWorking || !ok || c.m.db.nodeOf(sid) != n {
				t.Fatalf("node %s holds %v dispatcher %v of %s unknown to the maintainer", n, d.State, d.Id, span.String(d.Span))
			}
		}
	}
}

// TestTableRemovedMidOperation removes a table while its split is in flight and another while
// its merge is: every operator ends, the tables' dispatchers are removed on the nodes and their
// spans leave the DB.
func TestTableRemovedMidOperation(t *testing.T) {
	for _, kind := range []heartbeatpb.OperatorType{heartbeatpb.OpSplit, heartbeatpb.OpMerge, heartbeatpb.OpMove} {
		t.Run(kind.String(), func(t *testing.T) {
			cfg := Config{ClusterID: "c1", Changefeed: "cf", SelfNode: "n1", Epoch: 5,
				ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf", StartTs: ts.FromTime(t0), Redo: true,
					SplitLoadThreshold: 2000, MergeLoadThreshold: 700, SplitPieces: 4},
				SplitMergeCooldown: time.Second}
			for id := int64(1); id <= 4; id++ {
				cfg.ChangefeedConfig.Tables = append(cfg.ChangefeedConfig.Tables, heartbeatpb.TableConfig{TableId: id, Load: 100})
			}
			cfg.ChangefeedConfig.Tables[0].Load = 2400
			c := newLiveCluster(t, cfg, "n1", "n2", "n3")
			var victim int64
			for i := 0; i < 600 && victim == 0; i++ {
				c.step()
				for _, op := range c.m.ctl.List(c.now) {
					if op.Kind == kind && op.Spans[0].Span.Table == 1 {
						victim = 1
					}
				}
			}
			if victim == 0 {
				t.Fatalf("no %v of table 1 ever in flight", kind)
			}
			next := *c.m.cfg.ChangefeedConfig
			next.Tables = next.Tables[1:]
			if err := c.m.UpdateConfig(&next, c.now); err != nil {
				t.Fatal(err)
			}
			c.run(10 * time.Second)
			st := c.m.Status()
			if len(st.Operators) != 0 || st.Spans["replicating"] != 6 || len(c.m.db.byTable.get(1)) != 0 {
				t.Fatalf("not converged: %v, operators %+v, table 1 spans %d", st.Spans, st.Operators, len(c.m.db.byTable.get(1)))
			}
			c.checkNodesClean(t)
			if len(c.m.tables.gone) != 0 {
				t.Fatalf("tables still being removed: %v", c.m.tables.gone)
			}
		})
	}
}

func TestUpdateConfigRejects(t *testing.T) {
	cfg := Config{ClusterID: "c1", Changefeed: "cf", SelfNode: "n1", Epoch: 5,
		ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf", StartTs: 100,
			Tables: []heartbeatpb.TableConfig{{TableId: 1}}}}
	m, err := New(cfg, []string{"n1"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	cases := []*heartbeatpb.ChangefeedConfig{
		nil,
		{Id: "other"},
		{Id: "cf", Redo: true},
		{Id: "cf", Tables: []heartbeatpb.TableConfig{{TableId: 2}, {TableId: 2}}},
		{Id: "cf", Tables: []heartbeatpb.TableConfig{{TableId: -1}}},
	}
	for i, bad := range cases {
		if err := m.UpdateConfig(bad, t0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("case %d: %v, want ErrInvalid", i, err)
		}
		if len(m.cfg.ChangefeedConfig.Tables) != 1 || m.config.changed {
			t.Fatalf("case %d changed the config", i)
		}
	}
}

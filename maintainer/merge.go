package maintainer

import (
	"math"
	"slices"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

// maxMergeSources bounds how many spans one Merge joins.
const maxMergeSources = 16

// mergeCap is the most load a merged span may carry: three quarters of the split threshold, so
// a merge never makes a span the split scheduler would cut again (hysteresis). Without a split
// threshold, any cold run may merge.
func (m *Maintainer) mergeCap() uint64 {
	if t := m.cfg.ChangefeedConfig.SplitLoadThreshold; t > 0 {
		return t / 4 * 3
	}
	return math.MaxUint64
}

// tableMode names the spans of one table in one mode.
type tableMode struct {
	table int64
	mode  heartbeatpb.Mode
}

// mergeCold merges runs of adjacent cold spans of one table and mode. A run whose spans all live
// on one node is merged there; otherwise its spans elsewhere are first moved to the node that
// holds most of them, and a later round merges. Returns the operators it started.
func (m *Maintainer) mergeCold(now time.Time, budget int) int {
	if budget <= 0 || len(m.sched.cold) == 0 {
		return 0
	}
	seen := map[tableMode]bool{}
	for sid := range m.sched.cold {
		if r := m.db.get(sid); !r.retired {
			seen[tableMode{r.span.TableId, r.mode}] = true
		}
	}
	groups := make([]tableMode, 0, len(seen))
	for g := range seen {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool {
		if groups[i].table != groups[j].table {
			return groups[i].table < groups[j].table
		}
		return groups[i].mode < groups[j].mode
	})
	started := 0
	var merged []int64
	for _, g := range groups {
		if started >= budget {
			break
		}
		if m.sched.gone[g.table] || m.coolingDown(g.table, now) {
			continue
		}
		for _, run := range m.coldRuns(g, m.mergeCap()) {
			if started >= budget {
				break
			}
			n, didMerge := m.startMergeRun(run, now)
			started += n
			if didMerge {
				merged = append(merged, g.table)
			}
		}
	}
	// The cool-down starts after the round, so both modes of a table merge together.
	for _, t := range merged {
		mapSet(&m.sched.cooldown, t, now.Add(m.cfg.SplitMergeCooldown))
	}
	return started
}

// coldRuns returns the maximal runs (two or more) of adjacent, free, replicating, cold spans of
// g in key order whose loads sum to at most limit.
func (m *Maintainer) coldRuns(g tableMode, limit uint64) [][]spanID {
	var spans []spanID
	for _, sid := range m.db.byTable[g.table] {
		if m.db.get(sid).mode == g.mode {
			spans = append(spans, sid)
		}
	}
	sort.Slice(spans, func(i, j int) bool { return span.Compare(m.db.get(spans[i]).span, m.db.get(spans[j]).span) < 0 })
	var runs [][]spanID
	var run []spanID
	var sum uint64
	flush := func() {
		if len(run) >= 2 {
			runs = append(runs, run)
		}
		run, sum = nil, 0
	}
	for _, sid := range spans {
		r := m.db.get(sid)
		_, cold := m.sched.cold[sid]
		if !cold || r.state != stateReplicating || r.op != noOp {
			flush()
			continue
		}
		load := m.sched.loads[sid].load
		if len(run) > 0 && (!span.Adjacent(m.db.get(run[len(run)-1]).span, r.span) ||
			sum+load > limit || len(run) == maxMergeSources) {
			flush()
		}
		run = append(run, sid)
		sum += load
	}
	flush()
	return runs
}

// startMergeRun merges run when its spans share a node, and otherwise moves the others to the
// node holding most of them. Returns the operators started and whether one is the Merge.
func (m *Maintainer) startMergeRun(run []spanID, now time.Time) (int, bool) {
	count := map[string]int{}
	for _, sid := range run {
		count[m.db.get(sid).node]++
	}
	target := ""
	for n, c := range count {
		if m.nodes[n] == nil || m.nodes[n].state != nodeReady || m.avoided(n) {
			continue
		}
		if target == "" || c > count[target] || (c == count[target] && n < target) {
			target = n
		}
	}
	if target == "" {
		return 0, false
	}
	if count[target] == len(run) {
		if m.startMerge(run, target, now) {
			return 1, true
		}
		return 0, false
	}
	moved := 0
	for _, sid := range run {
		if m.db.get(sid).node != target && m.startMove(sid, target, now) {
			moved++
		}
	}
	return moved, false
}

// startMerge creates the Merge of run (key order, all on node); false when refused.
func (m *Maintainer) startMerge(run []spanID, node string, now time.Time) bool {
	first := m.db.get(run[0])
	d := heartbeatpb.OperatorDescriptor{
		Id: heartbeatpb.OperatorID{Epoch: m.cfg.Epoch, Seq: m.nextOperator + 1}, Kind: heartbeatpb.OpMerge,
		Mode: first.mode, CreatedMs: now.UnixMilli(),
	}
	spans := make([]heartbeatpb.TableSpan, len(run))
	cps := make([]uint64, len(run))
	for i, sid := range run {
		r := m.db.get(sid)
		spans[i], cps[i] = r.span, m.db.checkpoint(sid)
		d.Sources = append(d.Sources, heartbeatpb.SpanPlacement{Span: r.span, DispatcherId: r.dispatcher, NodeId: node})
	}
	merged, err := span.Merge(spans)
	if err != nil {
		panic("maintainer: cold run is not adjacent: " + err.Error())
	}
	d.Targets = []heartbeatpb.SpanPlacement{{Span: merged, NodeId: node,
		DispatcherId: heartbeatpb.DispatcherID{Hi: m.cfg.Epoch, Lo: m.nextDispatcher + 1}}}
	op, err := operator.NewMerge(d, cps, now)
	if err != nil {
		panic("maintainer: span DB holds an invalid merge: " + err.Error())
	}
	if !m.addOp(op, merged, now) {
		return false
	}
	m.nextDispatcher++
	for _, sid := range run {
		m.db.beginOp(sid, d.Id)
		m.forgetLoad(sid)
	}
	m.opSpans[d.Id] = slices.Clone(run)
	m.log.Info("merging cold spans", zap.String("span", span.String(merged)), zap.Int("sources", len(run)),
		zap.String("node", node))
	return true
}

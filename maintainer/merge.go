package maintainer

import (
	"sort"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// maxMergeSources bounds how many spans one Merge joins.
const maxMergeSources = 16

// tableMode names the spans of one table in one mode.
type tableMode struct {
	table int64
	mode  heartbeatpb.Mode
}

// mergeCold merges runs of adjacent cold spans of one table and mode. A run whose spans all live
// on one node is merged there; otherwise its spans elsewhere are first moved to the node that
// holds most of them, and a later round merges. Returns the operators it started.
func mergeCold(v schedView, act starter, now time.Time, budget int) int {
	if budget <= 0 || len(v.loads.cold) == 0 {
		return 0
	}
	seen := map[tableMode]bool{}
	for sid := range v.loads.cold {
		if r := v.db.get(sid); !r.retired() {
			seen[tableMode{r.table, r.mode}] = true
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
		if v.gone(g.table) || v.loads.coolingDown(g.table, now) {
			continue
		}
		for _, run := range coldRuns(v, g, mergeCap(v.cfg.ChangefeedConfig)) {
			if started >= budget {
				break
			}
			n, didMerge := startMergeRun(v, act, run, now)
			started += n
			if didMerge {
				merged = append(merged, g.table)
			}
		}
	}
	// The cool-down starts after the round, so both modes of a table merge together.
	for _, t := range merged {
		act.coolDown(t, now.Add(v.cfg.SplitMergeCooldown))
	}
	return started
}

// coldRuns returns the maximal runs (two or more) of adjacent, free, replicating, cold spans of
// g in key order whose loads sum to at most limit.
func coldRuns(v schedView, g tableMode, limit uint64) [][]spanID {
	db := v.db
	var spans []spanID
	for _, sid := range db.byTable.get(g.table) {
		if db.get(sid).mode == g.mode {
			spans = append(spans, sid)
		}
	}
	sort.Slice(spans, func(i, j int) bool { return span.Compare(db.spanOf(spans[i]), db.spanOf(spans[j])) < 0 })
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
		r := db.get(sid)
		if !v.loads.isCold(sid) || !r.free() {
			flush()
			continue
		}
		load := v.loads.load(sid)
		if len(run) > 0 && (!span.Adjacent(db.spanOf(run[len(run)-1]), db.spanOf(sid)) ||
			sum+load > limit || len(run) == maxMergeSources) {
			flush()
		}
		run = append(run, sid)
		sum += load
	}
	flush()
	return runs
}

// gatherTarget returns the node that may receive spans holding most of run (ties by node ID),
// with how many of run each node holds; "" when none of them may.
func gatherTarget(v schedView, run []spanID) (string, map[string]int) {
	count := map[string]int{}
	for _, sid := range run {
		count[v.db.nodeOf(sid)]++
	}
	target := ""
	for n, c := range count {
		if !v.nodes.target(n) {
			continue
		}
		if target == "" || c > count[target] || (c == count[target] && n < target) {
			target = n
		}
	}
	return target, count
}

// startMergeRun merges run when its spans share a node, and otherwise moves the others to the
// node holding most of them. Returns the operators started and whether one is the Merge.
func startMergeRun(v schedView, act starter, run []spanID, now time.Time) (int, bool) {
	target, count := gatherTarget(v, run)
	if target == "" {
		return 0, false
	}
	if count[target] == len(run) {
		if act.merge(run, target, now) {
			return 1, true
		}
		return 0, false
	}
	moved := 0
	for _, sid := range run {
		if v.db.nodeOf(sid) != target && act.move(sid, target, now) {
			moved++
		}
	}
	return moved, false
}

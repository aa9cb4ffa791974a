package maintainer

import (
	"math"
	"slices"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// loadTracker is what the split and merge schedulers keep between rounds: each replicating
// span's last load report with its hot and cold streaks, and the tables cooling down after a
// split or merge. Every map is created on first use, so the zero value is ready.
type loadTracker struct {
	// loads: the last load report of each replicating span, with its hot and cold streaks;
	// hot and cold hold the spans whose streak reached LoadReports.
	loads     map[spanID]loadTrack
	hot, cold map[spanID]struct{}
	// cooldown: no split or merge of the table before this time.
	cooldown map[int64]time.Time
}

// loadTrack is one span's recent load reports.
type loadTrack struct {
	load      uint64
	hot, cold uint16 // consecutive reports above the split / below the merge threshold
}

// observe records one load report of a replicating span and keeps its hot and cold streaks:
// only a load that stays past a threshold for reports reports in a row counts, so a single
// spike neither splits nor merges anything.
func (t *loadTracker) observe(cfg *heartbeatpb.ChangefeedConfig, reports int, sid spanID, load uint64) {
	if cfg.SplitLoadThreshold == 0 && cfg.MergeLoadThreshold == 0 {
		return
	}
	if t.loads == nil {
		t.loads = make(map[spanID]loadTrack)
		t.hot = make(map[spanID]struct{})
		t.cold = make(map[spanID]struct{})
	}
	lt := t.loads[sid]
	lt.load = load
	lt.hot = streak(lt.hot, cfg.SplitLoadThreshold > 0 && load > cfg.SplitLoadThreshold)
	lt.cold = streak(lt.cold, cfg.MergeLoadThreshold > 0 && load < cfg.MergeLoadThreshold)
	t.loads[sid] = lt
	mark(t.hot, sid, int(lt.hot) >= reports)
	mark(t.cold, sid, int(lt.cold) >= reports)
}

func streak(n uint16, on bool) uint16 {
	switch {
	case !on:
		return 0
	case n < 1<<15:
		return n + 1
	}
	return n
}

func mark(set map[spanID]struct{}, sid spanID, on bool) {
	if on {
		set[sid] = struct{}{}
	} else {
		delete(set, sid)
	}
}

// forget drops a span's streaks: after a split or merge its reports start over.
func (t *loadTracker) forget(sid spanID) {
	delete(t.loads, sid)
	delete(t.hot, sid)
	delete(t.cold, sid)
}

// calm: no span is hot or cold, so the split and merge schedulers have nothing to do.
func (t *loadTracker) calm() bool { return len(t.hot) == 0 && len(t.cold) == 0 }

// hotSpans returns the hot spans in ID order (oldest first).
func (t *loadTracker) hotSpans() []spanID {
	out := make([]spanID, 0, len(t.hot))
	for sid := range t.hot {
		out = append(out, sid)
	}
	slices.Sort(out)
	return out
}

// notHot stops asking about a span (too narrow to split).
func (t *loadTracker) notHot(sid spanID) { delete(t.hot, sid) }

func (t *loadTracker) isCold(sid spanID) bool {
	_, ok := t.cold[sid]
	return ok
}

func (t *loadTracker) load(sid spanID) uint64 { return t.loads[sid].load }

// coolingDown reports whether table had a split or merge too recently.
func (t *loadTracker) coolingDown(table int64, now time.Time) bool {
	until, ok := t.cooldown[table]
	if ok && now.Before(until) {
		return true
	}
	if ok {
		delete(t.cooldown, table)
	}
	return false
}

// coolDown starts table's cool-down, until the given time.
func (t *loadTracker) coolDown(table int64, until time.Time) { mapSet(&t.cooldown, table, until) }

// mergeCap is the most load a merged span may carry: three quarters of the split threshold, so
// a merge never makes a span the split scheduler would cut again (hysteresis). Without a split
// threshold, any cold run may merge.
func mergeCap(cfg *heartbeatpb.ChangefeedConfig) uint64 {
	if t := cfg.SplitLoadThreshold; t > 0 {
		return t / 4 * 3
	}
	return math.MaxUint64
}

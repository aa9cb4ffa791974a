package sinkcheck

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/span"
)

// Gap: the keys [Start, End) (hex) of Table in Mode were not processed in the ts range (From, To].
type Gap struct {
	Mode       string
	Table      int64
	Start, End string
	From, To   uint64
}

// Overlap: the keys [Start, End) of Table in Mode were processed in (From, To] by two dispatchers.
type Overlap struct {
	Mode       string
	Table      int64
	Start, End string
	From, To   uint64
	A, B       string // "<node>/<dispatcher>"
	// Both: how long (ms) A and B held the keys at once (see reach); 0 for untimed records.
	Both int64
}

// Report is the result of Check.
type Report struct {
	// Bound is the lowest latest end over every checked key point: ranges were checked up to it.
	Bound   uint64
	Records int
	Spans   int // distinct (mode, span) pairs
	Gaps    []Gap
	// Overlaps: A and B held the keys at the same time: their wall-time windows overlap, or
	// (untimed records) B processed keys in pieces that end inside A's range (I1 evidence).
	Overlaps []Overlap
	// Repeats: B processed again a ts range A had processed, after A's window closed (untimed:
	// B caught up past A's end in its first range), as a new dispatcher does when it resumes from
	// an older checkpoint after a handoff, a merge or a crash. Allowed (I2 forbids only starting
	// above), reported for information.
	Repeats []Overlap
}

// OK reports whether no gap and no overlap was found; repeats are fine.
func (r Report) OK() bool { return len(r.Gaps) == 0 && len(r.Overlaps) == 0 }

// Err summarises the first few findings as an error, or returns nil when OK.
func (r Report) Err() error {
	if r.OK() {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sinkcheck: %d gaps, %d overlaps (checked to %d)", len(r.Gaps), len(r.Overlaps), r.Bound)
	for i, g := range r.Gaps {
		if i == 5 {
			break
		}
		fmt.Fprintf(&b, "; gap %s %d[%s,%s) ts (%d,%d]", g.Mode, g.Table, g.Start, g.End, g.From, g.To)
	}
	for i, o := range r.Overlaps {
		if i == 5 {
			break
		}
		fmt.Fprintf(&b, "; overlap %s %d[%s,%s) ts (%d,%d] by %s and %s", o.Mode, o.Table, o.Start, o.End,
			o.From, o.To, o.A, o.B)
		if o.Both > 0 {
			fmt.Fprintf(&b, " (both for %dms)", o.Both)
		}
	}
	return fmt.Errorf("%s", b.String())
}

// run is a ts range (from, to] one dispatcher processed contiguously over one span.
type run struct {
	from, to uint64
	firstTo  uint64 // the end of the run's first record: how far the owner got in one step
	// firstAt..lastAt: the wall-time window (ms) of the run's records; untimed when any record
	// lacks a wall time (files written before records carried one).
	firstAt, lastAt int64
	untimed         bool
	owner           string
}

// WindowSlackMs is how far (ms) one owner's window may reach into the next one's before the two
// count as owners at once. Records are stamped with the time a node's loop was ticked, which can
// trail the moment the dispatcher was created by up to one tick, so a clean handoff may look
// that much overlapped; a real double owner keeps overlapping for its whole life.
const WindowSlackMs = 100

// reach is how long (ms) a and b both held their keys: the smaller of how far each window
// reaches past the other's start. A window inside another reaches its whole length.
func reach(a, b run) int64 {
	return min(a.lastAt-b.firstAt, b.lastAt-a.firstAt)
}

// windowsOverlap reports whether a and b held their keys at the same time, beyond the slack.
func windowsOverlap(a, b run) bool {
	return reach(a, b) > WindowSlackMs
}

// spanRuns is one distinct span with its runs.
type spanRuns struct {
	start, end string // raw key bytes
	runs       []run
}

// groupKey: key ranges only interact within one table and mode.
type groupKey struct {
	mode  string
	table int64
}

// Check verifies records against the changefeed start ts. Tables, when given, must be covered in
// full in every mode that appears in the records; otherwise only the key range between a table's
// first and last recorded key is checked. A malformed record is an error.
func Check(records []dispatcher.Record, startTs uint64, tables ...int64) (Report, error) {
	groups, err := group(records)
	if err != nil {
		return Report{}, err
	}
	modes := map[string]bool{}
	for k := range groups {
		modes[k.mode] = true
	}
	for _, t := range tables {
		ts := span.TableSpan(t)
		for mode := range modes {
			k := groupKey{mode, t}
			// An empty placeholder span pins the table's ends as sweep boundaries.
			groups[k] = append(groups[k], &spanRuns{start: string(ts.StartKey), end: string(ts.EndKey)})
		}
	}
	keys := make([]groupKey, 0, len(groups))
	rep := Report{Records: len(records)}
	for k, g := range groups {
		keys = append(keys, k)
		for _, s := range g {
			if len(s.runs) > 0 {
				rep.Spans++
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].mode != keys[j].mode {
			return keys[i].mode < keys[j].mode
		}
		return keys[i].table < keys[j].table
	})
	// Pass 1: the bound is the lowest latest end of any key point that has records.
	bound, seen := uint64(0), false
	for _, k := range keys {
		sweep(groups[k], func(_, _ string, runs []run) {
			if len(runs) == 0 {
				return
			}
			latest := runs[0].to
			for _, r := range runs {
				latest = max(latest, r.to)
			}
			if !seen || latest < bound {
				bound, seen = latest, true
			}
		})
	}
	rep.Bound = bound
	if !seen || bound <= startTs {
		return rep, nil
	}
	// Pass 2: holes below the bound, and two owners of one key at one ts.
	for _, k := range keys {
		sweep(groups[k], func(lo, hi string, runs []run) {
			checkSegment(&rep, k, lo, hi, runs, startTs, bound)
		})
	}
	return rep, nil
}

// group validates records and collects them by (mode, table) and span into collapsed runs.
func group(records []dispatcher.Record) (map[groupKey][]*spanRuns, error) {
	type spanID struct {
		k          groupKey
		start, end string
	}
	bySpan := map[spanID]*spanRuns{}
	groups := map[groupKey][]*spanRuns{}
	for i, r := range records {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("sinkcheck: record %d: %w", i, err)
		}
		start, _ := hex.DecodeString(r.Start)
		end, _ := hex.DecodeString(r.End)
		id := spanID{groupKey{r.Mode, r.Table}, string(start), string(end)}
		s, ok := bySpan[id]
		if !ok {
			s = &spanRuns{start: id.start, end: id.end}
			bySpan[id] = s
			groups[id.k] = append(groups[id.k], s)
		}
		s.runs = append(s.runs, run{from: r.From, to: r.To, firstTo: r.To, firstAt: r.At, lastAt: r.At,
			untimed: r.At == 0, owner: r.Node + "/" + r.Dispatcher})
	}
	for _, s := range bySpan {
		s.runs = collapse(s.runs)
	}
	return groups, nil
}

// collapse joins the contiguous ranges of one owner, so a dispatcher that appended a million
// records over one span becomes one run.
func collapse(runs []run) []run {
	sort.Slice(runs, func(i, j int) bool {
		if runs[i].owner != runs[j].owner {
			return runs[i].owner < runs[j].owner
		}
		return runs[i].from < runs[j].from
	})
	out := runs[:0]
	for _, r := range runs {
		if n := len(out); n > 0 && out[n-1].owner == r.owner && r.from <= out[n-1].to {
			p := &out[n-1]
			p.to = max(p.to, r.to)
			p.firstAt, p.lastAt = min(p.firstAt, r.firstAt), max(p.lastAt, r.lastAt)
			p.untimed = p.untimed || r.untimed
			continue
		}
		out = append(out, r)
	}
	return out
}

// sweep calls visit for every elementary key segment [lo, hi) between consecutive span
// boundaries of one group, with the runs of all spans covering it, sorted by from.
func sweep(spans []*spanRuns, visit func(lo, hi string, runs []run)) {
	bounds := make([]string, 0, 2*len(spans))
	for _, s := range spans {
		bounds = append(bounds, s.start, s.end)
	}
	sort.Strings(bounds)
	bounds = dedup(bounds)
	byStart := append([]*spanRuns(nil), spans...)
	sort.Slice(byStart, func(i, j int) bool { return byStart[i].start < byStart[j].start })
	var active []*spanRuns
	next := 0
	var runs []run
	for i := 0; i+1 < len(bounds); i++ {
		lo, hi := bounds[i], bounds[i+1]
		kept := active[:0]
		for _, s := range active {
			if s.end > lo {
				kept = append(kept, s)
			}
		}
		active = kept
		for next < len(byStart) && byStart[next].start <= lo {
			if byStart[next].end > lo {
				active = append(active, byStart[next])
			}
			next++
		}
		runs = runs[:0]
		for _, s := range active {
			runs = append(runs, s.runs...)
		}
		sort.Slice(runs, func(a, b int) bool {
			if runs[a].from != runs[b].from {
				return runs[a].from < runs[b].from
			}
			return runs[a].owner < runs[b].owner
		})
		visit(lo, hi, runs)
	}
}

func dedup(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// checkSegment finds the holes in (startTs, bound] and the double processing in one segment.
// With wall times on every record, two owners whose windows overlap are an I1 violation
// whatever ts they processed, and a ts range processed again by a later owner is a Repeat.
// Without them, the shape rule in the package doc decides.
func checkSegment(rep *Report, k groupKey, lo, hi string, runs []run, startTs, bound uint64) {
	timed := true
	for _, r := range runs {
		timed = timed && !r.untimed
	}
	if timed {
		checkWindows(rep, k, lo, hi, runs)
	}
	reached := startTs // every ts in (startTs, reached] is processed for this segment
	var top run        // the run reaching furthest so far
	for i, r := range runs {
		if r.from > reached && reached < bound {
			addGap(rep, Gap{Mode: k.mode, Table: k.table, Start: lo, End: hi, From: reached, To: min(r.from, bound)})
		}
		reached = max(reached, r.to)
		if i > 0 && r.from < top.to && r.owner != top.owner {
			o := Overlap{Mode: k.mode, Table: k.table, Start: lo, End: hi,
				From: r.from, To: min(r.to, top.to), A: top.owner, B: r.owner}
			switch {
			case timed:
				// Owners at one time were reported by checkWindows; successive ones replayed.
				if !windowsOverlap(top, r) {
					addOverlap(&rep.Repeats, o)
				}
			case r.firstTo < top.to:
				// A dispatcher working alone catches up in one step to the present, which lies
				// beyond everything an owner stopped before it could reach. A piece ending
				// inside the other's range means the two advanced side by side.
				addOverlap(&rep.Overlaps, o)
			default:
				addOverlap(&rep.Repeats, o)
			}
		}
		if i == 0 || r.to > top.to {
			top = r
		}
	}
	if reached < bound {
		addGap(rep, Gap{Mode: k.mode, Table: k.table, Start: lo, End: hi, From: reached, To: bound})
	}
}

// addGap records g in hex, extending the previous gap when g continues it key-wise.
func addGap(rep *Report, g Gap) {
	g.Start, g.End = hex.EncodeToString([]byte(g.Start)), hex.EncodeToString([]byte(g.End))
	if n := len(rep.Gaps); n > 0 {
		p := &rep.Gaps[n-1]
		if p.Mode == g.Mode && p.Table == g.Table && p.End == g.Start && p.From == g.From && p.To == g.To {
			p.End = g.End
			return
		}
	}
	rep.Gaps = append(rep.Gaps, g)
}

// addOverlap records o in hex, extending the previous overlap when o continues it key-wise.
func addOverlap(list *[]Overlap, o Overlap) {
	o.Start, o.End = hex.EncodeToString([]byte(o.Start)), hex.EncodeToString([]byte(o.End))
	if n := len(*list); n > 0 {
		p := &(*list)[n-1]
		if p.Mode == o.Mode && p.Table == o.Table && p.End == o.Start && p.From == o.From && p.To == o.To &&
			p.A == o.A && p.B == o.B {
			p.End = o.End
			return
		}
	}
	*list = append(*list, o)
}

// checkWindows reports every pair of distinct owners of the segment whose wall-time windows
// overlap (I1). A segment usually has one or two owners, so the pairwise scan stays cheap.
func checkWindows(rep *Report, k groupKey, lo, hi string, runs []run) {
	for i := 1; i < len(runs); i++ {
		for j := 0; j < i; j++ {
			a, b := runs[j], runs[i]
			if a.owner == b.owner || !windowsOverlap(a, b) {
				continue
			}
			from, to := max(a.from, b.from), min(a.to, b.to)
			if from >= to { // both held the keys at once without a common ts: name b's range
				from, to = b.from, b.to
			}
			addOverlap(&rep.Overlaps, Overlap{Mode: k.mode, Table: k.table, Start: lo, End: hi,
				From: from, To: to, A: a.owner, B: b.owner, Both: reach(a, b)})
		}
	}
}

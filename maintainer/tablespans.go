package maintainer

import "math"

// tableSpans lists each table's spans (IDs in the span DB). A changefeed's tables are mostly
// one dense ID range ("1-1000000"), so the tables of the range that began with the first table
// listed have a slot each in a slice indexed by ID minus its first; any other table is in a map.
// Nearly every table has one span, so a slot holds that span itself and only a table of two or
// more names a list (in many). A map of every table was 73 MB of the maintainer's heap at
// 1,000,000 one-span tables, a list per slot 24 MB and the lists' arrays 4 MB more; slots are
// 4 MB in all.
type tableSpans struct {
	lo    int64    // the table of dense[0]
	dense []spanID // tables lo, lo+1, ...: the one span, noSpan or manySpans
	many  map[int64][]spanID
	other map[int64][]spanID
}

// The slot values that are not a span (span IDs index the DB's records, far fewer than these).
const (
	noSpan    spanID = math.MaxUint32     // the table has no span
	manySpans spanID = math.MaxUint32 - 1 // its spans are listed in many
)

func (ts *tableSpans) inDense(t int64) bool {
	return len(ts.dense) > 0 && t >= ts.lo && t-ts.lo < int64(len(ts.dense))
}

// get returns table t's spans (nil: none). The caller must not keep the slice past a set; it
// may append to it (a slot's one span comes with no room to grow into the next slot).
func (ts *tableSpans) get(t int64) []spanID {
	if ts.inDense(t) {
		return ts.slot(t)
	}
	return ts.other[t]
}

// slot is the spans of dense-run table t.
func (ts *tableSpans) slot(t int64) []spanID {
	i := t - ts.lo
	switch ts.dense[i] {
	case noSpan:
		return nil
	case manySpans:
		return ts.many[t]
	}
	return ts.dense[i : i+1 : i+1]
}

// setSlot makes ids dense-run table t's spans.
func (ts *tableSpans) setSlot(t int64, ids []spanID) {
	i := t - ts.lo
	switch len(ids) {
	case 0:
		ts.dense[i] = noSpan
		delete(ts.many, t)
	case 1:
		ts.dense[i] = ids[0] // read before the write: ids may be this very slot
		delete(ts.many, t)
	default:
		if ts.many == nil {
			ts.many = map[int64][]spanID{}
		}
		ts.dense[i], ts.many[t] = manySpans, ids
	}
}

// set makes ids table t's spans; an empty ids removes the table.
func (ts *tableSpans) set(t int64, ids []spanID) {
	if len(ids) == 0 {
		ids = nil
	}
	switch {
	case ts.inDense(t):
		ts.setSlot(t, ids)
	case ids == nil:
		delete(ts.other, t)
	case len(ts.dense) == 0 && len(ts.other) == 0:
		ts.lo, ts.dense = t, append(ts.dense, noSpan)
		ts.setSlot(t, ids)
	case len(ts.dense) > 0 && t == ts.lo+int64(len(ts.dense)):
		// The run grows over t: t leaves the map, or get would find its old list there
		// after the run passes it (TestTableSpansMatchesAMap caught exactly that).
		delete(ts.other, t)
		ts.dense = append(ts.dense, noSpan)
		ts.setSlot(t, ids)
	default:
		if ts.other == nil {
			ts.other = map[int64][]spanID{}
		}
		ts.other[t] = ids
	}
}

// reserve makes the dense run tables lo..lo+n-1, each with no span yet, so that a bulk load
// sets them in place whatever their order and gaps. ts must be empty.
func (ts *tableSpans) reserve(lo int64, n int) {
	ts.lo, ts.dense, ts.many, ts.other = lo, make([]spanID, n), nil, nil
	for i := range ts.dense {
		ts.dense[i] = noSpan
	}
}

// denseExtent is how many table IDs from tables[0] a dense run should cover for the ascending
// tables: up to the last table that keeps at least half the IDs so far in use. The dense run
// must not stop at the first gap: a table whose spans are all held by an operator being
// resumed is a gap in a restored plan, and with ten thousand Moves in flight over a million
// tables the first gap came early and nearly every table went to the map (70 MB and a third
// of a restore). Half full, the run costs at most 48 B a listed table.
func denseExtent(n int, table func(i int) int64) int {
	if n == 0 {
		return 0
	}
	lo, extent := table(0), 0
	for i := 0; i < n; i++ {
		if width := table(i) - lo + 1; width <= 2*int64(i+1) {
			extent = int(width)
		}
	}
	return extent
}

// add appends id to table t's spans.
func (ts *tableSpans) add(t int64, id spanID) { ts.set(t, append(ts.get(t), id)) }

// len is the number of tables with a span (checks: it walks them).
func (ts *tableSpans) len() int {
	n := 0
	ts.each(func(int64, []spanID) { n++ })
	return n
}

// each calls fn with every table that has a span and its spans, in no set order.
func (ts *tableSpans) each(fn func(t int64, ids []spanID)) {
	for i, s := range ts.dense {
		if s != noSpan {
			t := ts.lo + int64(i)
			fn(t, ts.slot(t))
		}
	}
	for t, ids := range ts.other {
		fn(t, ids)
	}
}

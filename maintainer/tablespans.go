package maintainer

// tableSpans lists each table's spans (IDs in the span DB). A changefeed's tables are mostly
// one dense ID range ("1-1000000"), so the tables of the range that began with the first table
// listed are a slice indexed by ID minus its first; any other table is in a map. A map of every
// table was 73 MB of the maintainer's heap at 1,000,000 one-span tables (a slice is 24 B a
// table).
type tableSpans struct {
	lo    int64      // the table of dense[0]
	dense [][]spanID // tables lo, lo+1, ...; an empty list: no span
	other map[int64][]spanID
}

func (ts *tableSpans) inDense(t int64) bool {
	return len(ts.dense) > 0 && t >= ts.lo && t-ts.lo < int64(len(ts.dense))
}

// get returns table t's spans (nil: none). The caller must not keep the slice past a set.
func (ts *tableSpans) get(t int64) []spanID {
	if ts.inDense(t) {
		return ts.dense[t-ts.lo]
	}
	return ts.other[t]
}

// set makes ids table t's spans; an empty ids removes the table.
func (ts *tableSpans) set(t int64, ids []spanID) {
	if len(ids) == 0 {
		ids = nil
	}
	switch {
	case ts.inDense(t):
		ts.dense[t-ts.lo] = ids
	case ids == nil:
		delete(ts.other, t)
	case len(ts.dense) == 0 && len(ts.other) == 0:
		ts.lo, ts.dense = t, append(ts.dense, ids)
	case len(ts.dense) > 0 && t == ts.lo+int64(len(ts.dense)):
		// The run grows over t: t leaves the map, or get would find its old list there
		// after the run passes it (TestTableSpansMatchesAMap caught exactly that).
		delete(ts.other, t)
		ts.dense = append(ts.dense, ids)
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
	ts.lo, ts.dense, ts.other = lo, make([][]spanID, n), nil
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
	for i, ids := range ts.dense {
		if len(ids) > 0 {
			fn(ts.lo+int64(i), ids)
		}
	}
	for t, ids := range ts.other {
		fn(t, ids)
	}
}

package span

import (
	"bytes"
	"math/rand"
	"sort"
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// TestSplitMergeProperty: for random sub-spans and piece counts, Split yields k adjacent, valid,
// non-empty pieces whose Merge (in any order) is the original.
func TestSplitMergeProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for iter := 0; iter < 2000; iter++ {
		table := rng.Int63n(1000)
		s := randomSubSpan(rng, table)
		k := 2 + rng.Intn(63)
		pieces, err := Split(s, k)
		if err != nil {
			// Only narrow spans may refuse; a whole table or a wide span never does.
			if Equal(s, TableSpan(table)) {
				t.Fatalf("iter %d: split of whole table %d into %d: %v", iter, table, k, err)
			}
			continue
		}
		if len(pieces) != k {
			t.Fatalf("iter %d: split %s into %d gave %d pieces", iter, String(s), k, len(pieces))
		}
		for i, p := range pieces {
			if err := Validate(p); err != nil {
				t.Fatalf("iter %d: piece %d of %s: %v", iter, i, String(s), err)
			}
			if !Contains(s, p) {
				t.Fatalf("iter %d: piece %s outside %s", iter, String(p), String(s))
			}
			if i > 0 && !Adjacent(pieces[i-1], p) {
				t.Fatalf("iter %d: pieces %d and %d not adjacent", iter, i-1, i)
			}
		}
		if !bytes.Equal(pieces[0].StartKey, s.StartKey) || !bytes.Equal(pieces[k-1].EndKey, s.EndKey) {
			t.Fatalf("iter %d: pieces do not span %s", iter, String(s))
		}
		rng.Shuffle(len(pieces), func(i, j int) { pieces[i], pieces[j] = pieces[j], pieces[i] })
		merged, err := Merge(pieces)
		if err != nil || !Equal(merged, s) {
			t.Fatalf("iter %d: merge of split %s = %s, %v", iter, String(s), String(merged), err)
		}
		if cov := CheckCoverage(table, pieces); Equal(s, TableSpan(table)) && !cov.Exact() {
			t.Fatalf("iter %d: split of whole table does not cover it exactly: %+v", iter, cov)
		}
	}
}

func TestSplitRefuses(t *testing.T) {
	s := TableSpan(1)
	if _, err := Split(s, 1); err == nil {
		t.Fatal("split into 1 piece accepted")
	}
	narrow := heartbeatpb.TableSpan{TableId: 1, StartKey: s.StartKey, EndKey: append(append([]byte(nil), s.StartKey...), 0)}
	if _, err := Split(narrow, 2); err == nil {
		t.Fatalf("split of the one-key span %s accepted", String(narrow))
	}
	if _, err := Split(heartbeatpb.TableSpan{TableId: 1, StartKey: s.EndKey, EndKey: s.StartKey}, 2); err == nil {
		t.Fatal("split of an inverted span accepted")
	}
	if _, err := Merge([]heartbeatpb.TableSpan{s}); err == nil {
		t.Fatal("merge of one span accepted")
	}
	if _, err := Merge([]heartbeatpb.TableSpan{TableSpan(1), TableSpan(3)}); err == nil {
		t.Fatal("merge of non-adjacent spans accepted")
	}
}

// TestCheckCoverageProperty cuts a small key universe at random points, picks random pieces
// (some twice, some not at all, some stretched) and compares CheckCoverage with a per-key count.
func TestCheckCoverageProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	const table = 7
	keys := smallKeys(table, 12) // keys[0] = table start, keys[len-1] = table end
	for iter := 0; iter < 3000; iter++ {
		var spans []heartbeatpb.TableSpan
		for n := rng.Intn(6); n > 0; n-- {
			i := rng.Intn(len(keys) - 1)
			j := i + 1 + rng.Intn(len(keys)-1-i)
			spans = append(spans, heartbeatpb.TableSpan{TableId: table, StartKey: keys[i], EndKey: keys[j]})
		}
		if rng.Intn(4) == 0 { // a span of another table is ignored
			spans = append(spans, TableSpan(table+1))
		}
		// Brute force: count per elementary interval [keys[i], keys[i+1]).
		counts := make([]int, len(keys)-1)
		for _, s := range spans {
			if s.TableId != table {
				continue
			}
			for i := range counts {
				if bytes.Compare(s.StartKey, keys[i]) <= 0 && bytes.Compare(keys[i+1], s.EndKey) <= 0 {
					counts[i]++
				}
			}
		}
		wantGaps := runs(keys, counts, func(c int) bool { return c == 0 })
		wantOver := runs(keys, counts, func(c int) bool { return c > 1 })
		cov := CheckCoverage(table, spans)
		if got := normalize(cov.Gaps); !equalSpans(got, wantGaps) {
			t.Fatalf("iter %d: gaps = %v, want %v (spans %v)", iter, str(got), str(wantGaps), str(spans))
		}
		if got := normalize(cov.Overlaps); !equalSpans(got, wantOver) {
			t.Fatalf("iter %d: overlaps = %v, want %v (spans %v)", iter, str(got), str(wantOver), str(spans))
		}
		if cov.Exact() != (len(wantGaps) == 0 && len(wantOver) == 0) {
			t.Fatalf("iter %d: Exact disagrees", iter)
		}
	}
}

// TestPredicatesBruteForce checks Overlap, Adjacent and Contains against per-key membership on
// a small key universe.
func TestPredicatesBruteForce(t *testing.T) {
	keys := smallKeys(3, 6)
	var all []heartbeatpb.TableSpan
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			all = append(all, heartbeatpb.TableSpan{TableId: 3, StartKey: keys[i], EndKey: keys[j]})
		}
	}
	all = append(all, TableSpan(4))
	member := func(s heartbeatpb.TableSpan, i int) bool { // does s hold [keys[i], keys[i+1])?
		return s.TableId == 3 && bytes.Compare(s.StartKey, keys[i]) <= 0 && bytes.Compare(keys[i+1], s.EndKey) <= 0
	}
	for _, a := range all {
		for _, b := range all {
			overlap, contains := false, true
			for i := 0; i+1 < len(keys); i++ {
				if member(a, i) && member(b, i) {
					overlap = true
				}
				if member(b, i) && !member(a, i) {
					contains = false
				}
			}
			if a.TableId != 3 || b.TableId != 3 {
				// Table 4 is outside the key universe: it only overlaps and contains itself.
				overlap = a.TableId == b.TableId
				contains = overlap
			}
			adjacent := a.TableId == b.TableId && bytes.Equal(a.EndKey, b.StartKey)
			if got := Overlap(a, b); got != overlap {
				t.Errorf("Overlap(%s, %s) = %v, want %v", String(a), String(b), got, overlap)
			}
			if got := Contains(a, b); got != contains {
				t.Errorf("Contains(%s, %s) = %v, want %v", String(a), String(b), got, contains)
			}
			if got := Adjacent(a, b); got != adjacent {
				t.Errorf("Adjacent(%s, %s) = %v, want %v", String(a), String(b), got, adjacent)
			}
			if Overlap(a, b) != Overlap(b, a) {
				t.Errorf("Overlap not symmetric for %s, %s", String(a), String(b))
			}
		}
	}
}

func TestValidateAndKeys(t *testing.T) {
	for _, bad := range []heartbeatpb.TableSpan{
		{TableId: -1, StartKey: TableStartKey(0), EndKey: TableStartKey(1)},
		{TableId: 1<<63 - 1},
		{TableId: 1, StartKey: TableStartKey(1), EndKey: TableStartKey(1)},
		{TableId: 1, StartKey: TableStartKey(0), EndKey: TableStartKey(1)},
		{TableId: 1, StartKey: TableStartKey(1), EndKey: TableStartKey(3)},
		{TableId: 1},
	} {
		if Validate(bad) == nil {
			t.Errorf("Validate(%s) accepted", String(bad))
		}
	}
	s := TableSpan(42)
	if Validate(s) != nil || KeyOf(s).Span().TableId != 42 || !Equal(KeyOf(s).Span(), s) {
		t.Fatalf("round trip of %s failed", String(s))
	}
	if Compare(TableSpan(1), TableSpan(2)) >= 0 || Compare(TableSpan(2), TableSpan(1)) <= 0 {
		t.Fatal("Compare does not follow table order")
	}
}

// TestInTableMatchesValidate: the key-free checks a restore uses agree with Validate and with
// building the table's span, over valid spans, spans reaching into a neighbour, empty and
// reversed ones, and table IDs at the edges.
func TestInTableMatchesValidate(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	var cases []heartbeatpb.TableSpan
	for _, table := range []int64{0, 1, 2, 255, 256, 1<<32 - 1, 1 << 40, 1<<63 - 2} {
		for i := 0; i < 200; i++ {
			s := randomSubSpan(rng, table)
			cases = append(cases, s)
			cases = append(cases, heartbeatpb.TableSpan{TableId: table, StartKey: s.EndKey, EndKey: s.StartKey})
			cases = append(cases, heartbeatpb.TableSpan{TableId: table + 1, StartKey: s.StartKey, EndKey: s.EndKey})
			cases = append(cases, heartbeatpb.TableSpan{TableId: table, StartKey: s.StartKey, EndKey: TableStartKey(table + 2)})
		}
	}
	cases = append(cases, heartbeatpb.TableSpan{TableId: -1, StartKey: TableStartKey(-1), EndKey: TableStartKey(0)},
		heartbeatpb.TableSpan{TableId: 1<<63 - 1, StartKey: TableStartKey(1<<63 - 1), EndKey: []byte{0xff}},
		heartbeatpb.TableSpan{TableId: 5}, TableSpan(5))
	whole := 0
	for _, s := range cases {
		if got, want := InTable(s), Validate(s) == nil; got != want {
			t.Errorf("InTable(%s) = %v, Validate says %v", String(s), got, want)
		}
		want := ValidTableID(s.TableId) && Equal(s, TableSpan(s.TableId))
		if got := IsWholeTable(s); got != want {
			t.Errorf("IsWholeTable(%s) = %v, want %v", String(s), got, want)
		}
		if want {
			whole++
		}
	}
	if whole < 100 {
		t.Fatalf("only %d whole-table cases: the test does not exercise IsWholeTable", whole)
	}
}

// randomSubSpan returns the whole table or a random sub-span with keys of varied lengths.
func randomSubSpan(rng *rand.Rand, table int64) heartbeatpb.TableSpan {
	whole := TableSpan(table)
	if rng.Intn(3) == 0 {
		return whole
	}
	for {
		a := append(append([]byte(nil), whole.StartKey...), randBytes(rng)...)
		b := append(append([]byte(nil), whole.StartKey...), randBytes(rng)...)
		if c := bytes.Compare(a, b); c == 0 {
			continue
		} else if c > 0 {
			a, b = b, a
		}
		if rng.Intn(4) == 0 {
			b = whole.EndKey
		}
		return heartbeatpb.TableSpan{TableId: table, StartKey: a, EndKey: b}
	}
}

func randBytes(rng *rand.Rand) []byte {
	b := make([]byte, 1+rng.Intn(6))
	rng.Read(b)
	return b
}

// smallKeys returns n+1 increasing keys from the table's start key to its end key.
func smallKeys(table int64, n int) [][]byte {
	whole := TableSpan(table)
	keys := [][]byte{whole.StartKey}
	for i := 1; i < n; i++ {
		keys = append(keys, append(append([]byte(nil), whole.StartKey...), byte(i*10)))
	}
	return append(keys, whole.EndKey)
}

// runs returns the maximal key ranges whose elementary intervals satisfy pred.
func runs(keys [][]byte, counts []int, pred func(int) bool) []heartbeatpb.TableSpan {
	var out []heartbeatpb.TableSpan
	for i := 0; i < len(counts); {
		if !pred(counts[i]) {
			i++
			continue
		}
		j := i
		for j < len(counts) && pred(counts[j]) {
			j++
		}
		out = append(out, heartbeatpb.TableSpan{TableId: 7, StartKey: keys[i], EndKey: keys[j]})
		i = j
	}
	return out
}

// normalize sorts spans and merges those that overlap or touch, so different but equivalent
// descriptions of the same key set compare equal.
func normalize(in []heartbeatpb.TableSpan) []heartbeatpb.TableSpan {
	s := append([]heartbeatpb.TableSpan(nil), in...)
	sort.Slice(s, func(i, j int) bool { return Compare(s[i], s[j]) < 0 })
	var out []heartbeatpb.TableSpan
	for _, x := range s {
		if n := len(out); n > 0 && bytes.Compare(x.StartKey, out[n-1].EndKey) <= 0 {
			if bytes.Compare(x.EndKey, out[n-1].EndKey) > 0 {
				out[n-1].EndKey = x.EndKey
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

func equalSpans(a, b []heartbeatpb.TableSpan) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func str(spans []heartbeatpb.TableSpan) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = String(s)
	}
	return out
}

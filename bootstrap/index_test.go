package bootstrap

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// TestSortBySpan checks the run merge and the index sort against a plain sort, for lists made of
// a few sorted runs (nodes reporting in order) and of many (no order at all), with one scratch
// buffer for every call as seal uses it (grown, then reused by smaller lists).
func TestSortBySpan(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	pieces, err := span.Split(span.TableSpan(1), 256)
	if err != nil {
		t.Fatal(err)
	}
	var scratch []Placement
	for _, runs := range []int{1, 2, 3, 10, 200, 3, 10, 2} {
		var ps []Placement
		for r := 0; r < runs; r++ {
			var run []Placement
			for i := 0; i < 1+rng.Intn(40); i++ {
				run = append(run, Placement{Span: pieces[rng.Intn(len(pieces))], Dispatcher: heartbeatpb.DispatcherID{Lo: uint64(len(ps) + i)}})
			}
			slices.SortFunc(run, cmpSpan)
			ps = append(ps, run...)
		}
		want := slices.Clone(ps)
		slices.SortStableFunc(want, cmpSpan)
		got := slices.Clone(ps)
		scratch = sortBySpan(got, scratch)
		if !slices.IsSortedFunc(got, cmpSpan) || len(got) != len(want) {
			t.Fatalf("%d runs: not sorted", runs)
		}
		count := map[heartbeatpb.DispatcherID]int{}
		for _, p := range got {
			count[p.Dispatcher]++
		}
		for _, p := range want {
			if count[p.Dispatcher] != 1 {
				t.Fatalf("%d runs: %v lost or repeated", runs, p.Dispatcher)
			}
		}
	}
}

// TestWorkingIndexFind checks overlap queries against a scan, with overlapping placements.
func TestWorkingIndexFind(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	pieces, _ := span.Split(span.TableSpan(1), 64)
	var all []Placement
	resp := &heartbeatpb.MaintainerBootstrapResponse{}
	for i := 0; i < 100; i++ {
		a, b := rng.Intn(64), rng.Intn(64)
		if a > b {
			a, b = b, a
		}
		s := heartbeatpb.TableSpan{TableId: 1, StartKey: pieces[a].StartKey, EndKey: pieces[b].EndKey}
		all = append(all, Placement{Span: s, Dispatcher: heartbeatpb.DispatcherID{Lo: uint64(i)}})
		resp.Dispatchers = append(resp.Dispatchers, heartbeatpb.DispatcherStatus{Span: s})
	}
	tables, err := newTableIndex([]heartbeatpb.TableConfig{{TableId: 1}})
	if err != nil {
		t.Fatal(err)
	}
	idx := newWorkingIndex(tables, 1)
	idx.reserve(map[string]*heartbeatpb.MaintainerBootstrapResponse{"n1": resp})
	g, ok := idx.group(1, heartbeatpb.ModeDefault)
	if !ok {
		t.Fatal("table 1 has no group")
	}
	for _, p := range all {
		if !idx.add(g, p) {
			t.Fatalf("add %v: group full after reserve", p.Dispatcher)
		}
	}
	if idx.add(g, all[0]) {
		t.Fatal("add past what reserve counted succeeded")
	}
	idx.seal()
	for q := 0; q < 200; q++ {
		a, b := rng.Intn(64), rng.Intn(64)
		if a > b {
			a, b = b, a
		}
		s := heartbeatpb.TableSpan{TableId: 1, StartKey: pieces[a].StartKey, EndKey: pieces[b].EndKey}
		skip := rng.Intn(100)
		want := false
		for _, p := range all {
			if span.Overlap(p.Span, s) && p.Dispatcher.Lo != uint64(skip) {
				want = true
			}
		}
		got, ok := idx.find(g, s, func(p Placement) bool { return p.Dispatcher.Lo == uint64(skip) })
		if ok != want || (ok && !span.Overlap(got.Span, s)) {
			t.Fatalf("query %s: found %v (%v), want %v", span.String(s), ok, got.Dispatcher, want)
		}
	}
}

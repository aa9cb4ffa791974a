package bootstrap

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// TestTableIndex checks lookups against a map for dense ranges (in and out of order), sparse
// IDs and the edges around them, and that bad lists are refused.
func TestTableIndex(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	dense := func(from, n int64) []int64 {
		var ids []int64
		for i := int64(0); i < n; i++ {
			ids = append(ids, from+i)
		}
		return ids
	}
	shuffled := dense(10, 50)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for name, ids := range map[string][]int64{
		"empty": nil, "dense": dense(1, 100), "dense from 0": dense(0, 3), "shuffled": shuffled,
		"sparse": {7, 3, 1000, 1 << 40, 0, 1<<63 - 2}, "gap": {1, 2, 4},
	} {
		var cfg []heartbeatpb.TableConfig
		want := map[int64]bool{}
		for _, id := range ids {
			cfg = append(cfg, heartbeatpb.TableConfig{TableId: id})
			want[id] = true
		}
		ti, err := newTableIndex(cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ti.len() != len(ids) {
			t.Fatalf("%s: len %d, want %d", name, ti.len(), len(ids))
		}
		seen := map[int]bool{}
		for _, id := range ids {
			for _, probe := range []int64{id - 1, id, id + 1} {
				i, ok := ti.lookup(probe)
				if ok != want[probe] {
					t.Fatalf("%s: lookup(%d) = %v, want %v", name, probe, ok, want[probe])
				}
				if ok && ti.id(i) != probe {
					t.Fatalf("%s: lookup(%d) = %d, which is table %d", name, probe, i, ti.id(i))
				}
			}
			i, _ := ti.lookup(id)
			if seen[i] || i < 0 || i >= len(ids) {
				t.Fatalf("%s: table %d numbered %d (repeat or out of 0..%d)", name, id, i, len(ids)-1)
			}
			seen[i] = true
		}
		for i := 1; i < ti.len(); i++ {
			if ti.id(i-1) >= ti.id(i) {
				t.Fatalf("%s: tables not numbered in ID order at %d", name, i)
			}
		}
		if _, ok := ti.lookup(-5); ok {
			t.Fatalf("%s: found table -5", name)
		}
	}
	for _, bad := range []struct {
		ids  []int64
		want string
	}{{[]int64{1, 2, 2}, "table 2 listed twice"}, {[]int64{5, 1, 5}, "table 5 listed twice"},
		{[]int64{1, -1}, "table id -1 out of range"}, {[]int64{1<<63 - 1}, "out of range"}} {
		var cfg []heartbeatpb.TableConfig
		for _, id := range bad.ids {
			cfg = append(cfg, heartbeatpb.TableConfig{TableId: id})
		}
		if _, err := newTableIndex(cfg); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("%v: error %v, want %q", bad.ids, err, bad.want)
		}
	}
}

// TestCatalogueIndex: a config naming its tables as a catalogue only is indexed as the same
// tables listed one by one would be, and a malformed catalogue is refused.
func TestCatalogueIndex(t *testing.T) {
	for name, ids := range map[string][]int64{
		"one range": {4, 5, 6, 7}, "ranges": {1, 2, 3, 10, 11, 40}, "single": {9},
	} {
		var list []heartbeatpb.TableConfig
		for _, id := range ids {
			list = append(list, heartbeatpb.TableConfig{TableId: id})
		}
		cat := heartbeatpb.CompactTables(list)
		fromList, err := newTableIndex(list)
		if err != nil {
			t.Fatal(err)
		}
		fromCat, err := indexConfig(&heartbeatpb.ChangefeedConfig{Id: "cf", Catalogue: &cat})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fromCat.len() != fromList.len() {
			t.Fatalf("%s: %d tables from the catalogue, %d from the list", name, fromCat.len(), fromList.len())
		}
		for i := 0; i < fromList.len(); i++ {
			if fromCat.id(i) != fromList.id(i) {
				t.Fatalf("%s: table %d is %d from the catalogue, %d from the list", name, i, fromCat.id(i), fromList.id(i))
			}
		}
		for _, probe := range []int64{0, 8, 12, 39, 41} {
			_, a := fromCat.lookup(probe)
			_, b := fromList.lookup(probe)
			if a != b {
				t.Fatalf("%s: lookup(%d) is %v from the catalogue, %v from the list", name, probe, a, b)
			}
		}
	}
	for name, cat := range map[string]heartbeatpb.TableCatalogue{
		"overlapping": {Ranges: []heartbeatpb.TableRange{{First: 1, Last: 5}, {First: 5, Last: 9}}},
		"reversed":    {Ranges: []heartbeatpb.TableRange{{First: 9, Last: 1}}},
		"negative":    {Ranges: []heartbeatpb.TableRange{{First: -3, Last: 1}}},
	} {
		if _, err := indexConfig(&heartbeatpb.ChangefeedConfig{Id: "cf", Catalogue: &cat}); err == nil {
			t.Fatalf("%s catalogue %v accepted", name, cat.Ranges)
		}
	}
}

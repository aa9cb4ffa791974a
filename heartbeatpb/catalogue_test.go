package heartbeatpb

import (
	"strings"
	"testing"
)

func TestCatalogueCompactLookup(t *testing.T) {
	// Unsorted, with a gap and a sparse load.
	tables := []TableConfig{{TableId: 7, Load: 3}, {TableId: 1, Load: 3}, {TableId: 2, Load: 9}, {TableId: 3, Load: 3}, {TableId: 9, Load: 3}}
	c := CompactTables(tables)
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	want := []TableRange{{1, 3}, {7, 7}, {9, 9}}
	if len(c.Ranges) != len(want) || c.DefaultLoad != 3 || len(c.Loads) != 1 || c.Loads[0] != (TableConfig{TableId: 2, Load: 9}) {
		t.Fatalf("catalogue %+v", c)
	}
	for i := range want {
		if c.Ranges[i] != want[i] {
			t.Fatalf("range %d: %+v, want %+v", i, c.Ranges[i], want[i])
		}
	}
	for _, tb := range tables {
		if got, ok := c.Lookup(tb.TableId); !ok || got != tb {
			t.Errorf("lookup %d: %+v %v, want %+v", tb.TableId, got, ok, tb)
		}
	}
	for _, id := range []int64{0, 4, 8, 10, -1} {
		if _, ok := c.Lookup(id); ok {
			t.Errorf("lookup %d: found, it is not in the catalogue", id)
		}
	}
	if c.Count() != 5 {
		t.Errorf("count %d", c.Count())
	}
}

func TestCatalogueCheckRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    TableCatalogue
		want string
	}{
		{"reversed", TableCatalogue{Ranges: []TableRange{{5, 3}}}, "reversed"},
		{"overlap", TableCatalogue{Ranges: []TableRange{{1, 5}, {5, 9}}}, "overlaps"},
		{"descending", TableCatalogue{Ranges: []TableRange{{10, 12}, {1, 2}}}, "overlaps or precedes"},
		{"negative", TableCatalogue{Ranges: []TableRange{{-1, 2}}}, "out of range"},
		{"too many", TableCatalogue{Ranges: []TableRange{{1, MaxCatalogueTables}, {MaxCatalogueTables + 2, MaxCatalogueTables + 2}}}, "more than"},
		{"load outside", TableCatalogue{Ranges: []TableRange{{1, 5}}, Loads: []TableConfig{{TableId: 6, Load: 1}}}, "not in the ranges"},
		{"loads unordered", TableCatalogue{Ranges: []TableRange{{1, 5}}, Loads: []TableConfig{{TableId: 3}, {TableId: 2}}}, "not above"},
	} {
		err := tc.c.Check()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	ok := TableCatalogue{Ranges: []TableRange{{1, MaxCatalogueTables}}}
	if err := ok.Check(); err != nil {
		t.Errorf("a million tables: %v", err)
	}
}

// TestWireConfigLegacy: nodes that predate the catalogue still get every table of a changefeed
// they could have run; above that only the catalogue goes.
func TestWireConfigLegacy(t *testing.T) {
	for _, n := range []int{10, LegacyTablesMax, LegacyTablesMax + 1} {
		cfg := &ChangefeedConfig{Id: "cf"}
		for i := 0; i < n; i++ {
			cfg.Tables = append(cfg.Tables, TableConfig{TableId: int64(i + 1)})
		}
		cat := CompactTables(cfg.Tables)
		w := WireConfig(cfg, &cat)
		legacy := n <= LegacyTablesMax
		if (len(w.Tables) == n) != legacy || (!legacy && w.Tables != nil) || w.Catalogue.Count() != n {
			t.Errorf("%d tables: wire has %d listed and a catalogue of %d", n, len(w.Tables), w.Catalogue.Count())
		}
		if len(cfg.Tables) != n {
			t.Errorf("%d tables: WireConfig changed its input", n)
		}
	}
}

package heartbeatpb

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// MaxCatalogueTables bounds the tables a catalogue may name, as a changefeed definition in
// etcd does (etcdutil.MaxTables): a claim above it is malformed, whatever its ranges.
const MaxCatalogueTables = 1_000_000

// LegacyTablesMax: a maintainer also lists the tables one by one (ChangefeedConfig.tables) for
// nodes that predate the catalogue while a changefeed has at most this many. Those versions
// stored a definition with every table inline and topped out near 85,000 tables, so every
// changefeed they can run still reaches them in full, and the list stays under 1 MiB.
const LegacyTablesMax = 100_000

// CompactTables folds tables into the catalogue form: ID ranges, the most common load and the
// loads that differ from it. tables need not be sorted; a repeated ID is folded into one.
func CompactTables(tables []TableConfig) TableCatalogue {
	ts := tables
	if !slices.IsSortedFunc(ts, func(a, b TableConfig) int { return cmpID(a.TableId, b.TableId) }) {
		ts = slices.Clone(ts)
		slices.SortFunc(ts, func(a, b TableConfig) int { return cmpID(a.TableId, b.TableId) })
	}
	var c TableCatalogue
	c.DefaultLoad = commonLoad(ts)
	for i, t := range ts {
		if i > 0 && ts[i-1].TableId == t.TableId {
			continue
		}
		if n := len(c.Ranges); n > 0 && c.Ranges[n-1].Last == t.TableId-1 {
			c.Ranges[n-1].Last = t.TableId
		} else {
			c.Ranges = append(c.Ranges, TableRange{First: t.TableId, Last: t.TableId})
		}
		if t.Load != c.DefaultLoad {
			c.Loads = append(c.Loads, t)
		}
	}
	return c
}

func cmpID(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// commonLoad returns the load most tables have (the smallest of equally common ones).
func commonLoad(ts []TableConfig) uint64 {
	count := make(map[uint64]int)
	var best uint64
	for _, t := range ts {
		count[t.Load]++
		if n, bn := count[t.Load], count[best]; n > bn || (n == bn && t.Load < best) {
			best = t.Load
		}
	}
	return best
}

// Check reports the first reason the catalogue is malformed: a range reversed, out of the
// table ID space, overlapping or not above the one before it, more than MaxCatalogueTables
// tables, or a load out of order or of a table the ranges do not name.
func (c *TableCatalogue) Check() error {
	var total uint64
	for i, r := range c.Ranges {
		switch {
		case r.First < 0 || r.Last >= math.MaxInt64:
			return fmt.Errorf("catalogue range %d (%d-%d): table id out of range", i, r.First, r.Last)
		case r.First > r.Last:
			return fmt.Errorf("catalogue range %d (%d-%d): reversed", i, r.First, r.Last)
		case i > 0 && r.First <= c.Ranges[i-1].Last:
			return fmt.Errorf("catalogue range %d (%d-%d): overlaps or precedes range %d (%d-%d)",
				i, r.First, r.Last, i-1, c.Ranges[i-1].First, c.Ranges[i-1].Last)
		}
		total += uint64(r.Last-r.First) + 1
		if total > MaxCatalogueTables {
			return fmt.Errorf("catalogue: more than %d tables", MaxCatalogueTables)
		}
	}
	for i, l := range c.Loads {
		if i > 0 && l.TableId <= c.Loads[i-1].TableId {
			return fmt.Errorf("catalogue load %d (table %d): not above the one before it", i, l.TableId)
		}
		if !c.Contains(l.TableId) {
			return fmt.Errorf("catalogue load %d: table %d is not in the ranges", i, l.TableId)
		}
	}
	return nil
}

// Contains reports whether the ranges name table id. The ranges must be ascending (Check).
func (c *TableCatalogue) Contains(id int64) bool {
	i := sort.Search(len(c.Ranges), func(i int) bool { return c.Ranges[i].Last >= id })
	return i < len(c.Ranges) && c.Ranges[i].First <= id
}

// Lookup returns table id's config, or false when the catalogue does not name it.
func (c *TableCatalogue) Lookup(id int64) (TableConfig, bool) {
	if !c.Contains(id) {
		return TableConfig{}, false
	}
	i := sort.Search(len(c.Loads), func(i int) bool { return c.Loads[i].TableId >= id })
	if i < len(c.Loads) && c.Loads[i].TableId == id {
		return c.Loads[i], true
	}
	return TableConfig{TableId: id, Load: c.DefaultLoad}, true
}

// Count is the number of tables the catalogue names.
func (c *TableCatalogue) Count() int {
	n := 0
	for _, r := range c.Ranges {
		n += int(r.Last-r.First) + 1
	}
	return n
}

// AppendIDs appends the IDs the catalogue names to dst, ascending (the ranges must be, Check).
func (c *TableCatalogue) AppendIDs(dst []int64) []int64 {
	for _, r := range c.Ranges {
		for id := r.First; id <= r.Last; id++ {
			dst = append(dst, id)
		}
	}
	return dst
}

// CatalogueOnly returns the catalogue of a config that names its tables through it alone (no
// list), as a maintainer keeps a large changefeed's; nil when the config lists its tables or
// has no catalogue with a range.
func (c *ChangefeedConfig) CatalogueOnly() *TableCatalogue {
	if cat := c.Catalogue; len(c.Tables) == 0 && cat != nil && len(cat.Ranges) > 0 {
		return cat
	}
	return nil
}

// WireConfig is cfg as a maintainer sends it in a bootstrap request: the tables as a catalogue
// (cat, CompactTables of cfg.Tables, computed once per config by the caller), and one by one
// only while they are at most LegacyTablesMax.
func WireConfig(cfg *ChangefeedConfig, cat *TableCatalogue) ChangefeedConfig {
	out := *cfg
	out.Catalogue = cat
	if len(cfg.Tables) > LegacyTablesMax {
		out.Tables = nil
	}
	return out
}

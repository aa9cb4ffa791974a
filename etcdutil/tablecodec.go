package etcdutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/tidemark/tidemark/span"
)

// MaxChangefeedInfoBytes bounds a stored changefeed definition. etcd refuses requests above
// ~1.5 MiB by default and every node reads the value on every change, so a definition stays far
// below that: a million contiguous tables take a few dozen bytes, but a million scattered ones
// would not fit, and are refused with a message saying so.
const MaxChangefeedInfoBytes = 512 << 10

// The stored form of a changefeed's tables is compact and still plain JSON for etcdctl:
//
//	"tables": ["1-1000000", "2000000"], "default_table_load": 100, "table_loads": {"7": 5000}
//
// Tables are inclusive ID ranges in ascending order; loads are sparse: the most common load is
// the default, and only tables whose load differs from it are listed. Definitions written by
// earlier versions, with one {"id":..,"load":..} object per table, are still read.

// changefeedJSON is ChangefeedInfo as stored; Tables is replaced by its compact form.
type changefeedJSON struct {
	changefeedFields
	Tables           json.RawMessage   `json:"tables"`
	DefaultTableLoad uint64            `json:"default_table_load,omitempty"`
	TableLoads       map[string]uint64 `json:"table_loads,omitempty"`
}

// changefeedFields is ChangefeedInfo without its methods, so encoding it does not recurse.
type changefeedFields ChangefeedInfo

// MarshalJSON writes the compact form. Tables must be sorted by ID (Normalize sorts them).
func (c ChangefeedInfo) MarshalJSON() ([]byte, error) {
	ranges, def, loads := compactTables(c.Tables)
	raw, err := json.Marshal(ranges)
	if err != nil {
		return nil, err
	}
	fields := changefeedFields(c)
	fields.Tables = nil
	return json.Marshal(changefeedJSON{changefeedFields: fields, Tables: raw, DefaultTableLoad: def, TableLoads: loads})
}

// UnmarshalJSON reads the compact form, or the per-table objects of earlier versions.
func (c *ChangefeedInfo) UnmarshalJSON(b []byte) error {
	var in changefeedJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*c = ChangefeedInfo(in.changefeedFields)
	c.Tables = nil
	raw := bytes.TrimSpace(in.Tables)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var ranges []string
	if err := json.Unmarshal(raw, &ranges); err == nil {
		tables, err := expandTables(ranges, in.DefaultTableLoad, in.TableLoads)
		if err != nil {
			return err
		}
		c.Tables = tables
		return nil
	}
	var legacy []TableInfo
	if err := json.Unmarshal(raw, &legacy); err != nil {
		return fmt.Errorf("field tables: neither ID ranges nor table objects: %w", err)
	}
	if len(in.TableLoads) > 0 || in.DefaultTableLoad > 0 {
		return fmt.Errorf("fields table_loads, default_table_load: only valid with ID ranges in tables")
	}
	c.Tables = legacy
	return nil
}

// compactTables folds tables into inclusive ID ranges, the most common load (the default) and
// the loads that differ from it.
func compactTables(ts []TableInfo) ([]string, uint64, map[string]uint64) {
	if !sort.SliceIsSorted(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID }) {
		ts = append([]TableInfo(nil), ts...)
		sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
	}
	def := commonLoad(ts)
	ranges := []string{}
	var loads map[string]uint64
	for i := 0; i < len(ts); {
		j := i
		for j+1 < len(ts) && ts[j+1].ID == ts[j].ID+1 {
			j++
		}
		if j > i {
			ranges = append(ranges, strconv.FormatInt(ts[i].ID, 10)+"-"+strconv.FormatInt(ts[j].ID, 10))
		} else {
			ranges = append(ranges, strconv.FormatInt(ts[i].ID, 10))
		}
		for k := i; k <= j; k++ {
			if ts[k].Load != def {
				if loads == nil {
					loads = make(map[string]uint64)
				}
				loads[strconv.FormatInt(ts[k].ID, 10)] = ts[k].Load
			}
		}
		i = j + 1
	}
	return ranges, def, loads
}

// commonLoad returns the load most tables have (the smallest of equally common ones).
func commonLoad(ts []TableInfo) uint64 {
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

// expandTables turns stored ranges and loads back into one TableInfo per table, refusing
// overlapping, unordered or malformed ranges, more than MaxTables tables, and loads of tables
// the ranges do not name.
func expandTables(ranges []string, def uint64, loads map[string]uint64) ([]TableInfo, error) {
	var out []TableInfo
	last := int64(-1)
	for i, r := range ranges {
		lo, hi, err := span.ParseTableRange(r)
		if err != nil {
			return nil, fmt.Errorf("field tables[%d]: %w", i, err)
		}
		if lo <= last {
			return nil, fmt.Errorf("field tables[%d]: %q overlaps or precedes the range before it (ranges ascend and do not overlap)", i, r)
		}
		if uint64(len(out))+uint64(hi-lo)+1 > MaxTables {
			return nil, fmt.Errorf("field tables: more than %d tables", MaxTables)
		}
		for id := lo; id <= hi; id++ {
			out = append(out, TableInfo{ID: id, Load: def})
		}
		last = hi
	}
	if len(loads) == 0 {
		return out, nil
	}
	keys := make([]string, 0, len(loads))
	for k := range loads {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		id, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("field table_loads: %q is not a table ID", k)
		}
		i := sort.Search(len(out), func(i int) bool { return out[i].ID >= id })
		if i == len(out) || out[i].ID != id {
			return nil, fmt.Errorf("field table_loads: table %d is not in tables", id)
		}
		out[i].Load = loads[k]
	}
	return out, nil
}

// MaxTables bounds the tables of one changefeed.
const MaxTables = 1_000_000

// encodeChangefeed encodes info for storage, refusing a definition over MaxChangefeedInfoBytes.
func encodeChangefeed(info ChangefeedInfo) (string, error) {
	val, err := encodeJSON("changefeed info", info)
	if err != nil {
		return "", err
	}
	if len(val) > MaxChangefeedInfoBytes {
		ranges, _, _ := compactTables(info.Tables)
		return "", fmt.Errorf("etcdutil: changefeed %q: definition is %d bytes, over the %d-byte limit "+
			"(its %d tables form %d separate ID ranges; use fewer, longer ranges)",
			info.ID, len(val), MaxChangefeedInfoBytes, len(info.Tables), len(ranges))
	}
	return val, nil
}

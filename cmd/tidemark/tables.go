package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/span"
)

// maxTables bounds a table list so that a typo such as "1-1000000000" is an error instead of
// an attempt to allocate a billion table entries: the most one changefeed may have.
const maxTables = etcdutil.MaxTables

// parseTables turns a table list such as "1-100,200,300-310" into sorted, distinct table IDs.
// Ranges are inclusive. A table listed twice is an error rather than silently merged, because
// it almost always means the list is not what its author thought.
func parseTables(spec string) ([]int64, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("table list is empty; give IDs and ranges such as 1-100,200")
	}
	seen := make(map[int64]struct{})
	var ids []int64
	for _, item := range strings.Split(spec, ",") {
		lo, hi, err := span.ParseTableRange(strings.TrimSpace(item))
		if err != nil {
			return nil, fmt.Errorf("table list %q: %w", spec, err)
		}
		if uint64(len(ids))+uint64(hi-lo)+1 > maxTables {
			return nil, fmt.Errorf("table list %q names more than %d tables", spec, maxTables)
		}
		for id := lo; id <= hi; id++ {
			if _, dup := seen[id]; dup {
				return nil, fmt.Errorf("table list %q: table %d is listed more than once", spec, id)
			}
			seen[id] = struct{}{}
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// parseLoads turns "3=500,7=1000" into per-table load figures. Every table must be in tables,
// so a load for a table the changefeed does not have is reported instead of ignored.
func parseLoads(spec string, tables []int64) (map[int64]uint64, error) {
	loads := make(map[int64]uint64)
	if strings.TrimSpace(spec) == "" {
		return loads, nil
	}
	known := make(map[int64]struct{}, len(tables))
	for _, id := range tables {
		known[id] = struct{}{}
	}
	for _, item := range strings.Split(spec, ",") {
		tStr, lStr, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("load list %q: element %q is not table=load", spec, item)
		}
		id, err := span.ParseTableID(tStr)
		if err != nil {
			return nil, fmt.Errorf("load list %q: %w", spec, err)
		}
		load, err := strconv.ParseUint(strings.TrimSpace(lStr), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("load list %q: load %q of table %d is not a whole number >= 0", spec, lStr, id)
		}
		if _, ok := known[id]; !ok {
			return nil, fmt.Errorf("load list %q: table %d is not in --tables", spec, id)
		}
		if _, dup := loads[id]; dup {
			return nil, fmt.Errorf("load list %q: table %d has more than one load", spec, id)
		}
		loads[id] = load
	}
	return loads, nil
}

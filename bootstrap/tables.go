package bootstrap

import (
	"fmt"
	"slices"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// tableIndex numbers the changefeed's tables 0..n-1 in ID order, so that what a restore keeps
// per table lives in slices rather than maps: at a million one-span tables, maps keyed by table
// (configured set, key bounds, working groups, kept lists) were most of a restore's time and
// memory. IDs are usually a dense range (tables 1..N): then a lookup is a subtraction and no
// list is kept at all.
type tableIndex struct {
	first int64   // dense: the lowest ID
	n     int     // number of tables
	ids   []int64 // sorted IDs, when they are not one dense range
}

// newCatalogueIndex indexes the tables of a config that names them as a catalogue only (a
// maintainer's own copy of a large changefeed's config); it fails on a malformed catalogue.
func newCatalogueIndex(c *heartbeatpb.TableCatalogue) (tableIndex, error) {
	if err := c.Check(); err != nil {
		return tableIndex{}, err
	}
	// Check bounds every range inside the valid table IDs (span.ValidTableID).
	t := tableIndex{n: c.Count()}
	if len(c.Ranges) == 1 {
		t.first = c.Ranges[0].First
		return t, nil
	}
	t.ids = c.AppendIDs(make([]int64, 0, t.n)) // ascending and distinct: Check
	return t, nil
}

// newTableIndex indexes the configured tables; it fails on an ID out of range or listed twice.
func newTableIndex(tables []heartbeatpb.TableConfig) (tableIndex, error) {
	t := tableIndex{n: len(tables)}
	dense := true
	for i := range tables {
		id := tables[i].TableId
		if !span.ValidTableID(id) {
			return tableIndex{}, fmt.Errorf("table id %d out of range", id)
		}
		dense = dense && (i == 0 || id == tables[i-1].TableId+1)
	}
	if dense {
		if t.n > 0 {
			t.first = tables[0].TableId
		}
		return t, nil
	}
	t.ids = make([]int64, len(tables))
	for i := range tables {
		t.ids[i] = tables[i].TableId
	}
	slices.Sort(t.ids)
	for i := 1; i < len(t.ids); i++ {
		if t.ids[i] == t.ids[i-1] {
			return tableIndex{}, fmt.Errorf("table %d listed twice", t.ids[i])
		}
	}
	if t.ids[len(t.ids)-1]-t.ids[0] == int64(len(t.ids)-1) {
		t.first, t.ids = t.ids[0], nil // a dense range listed out of order
	}
	return t, nil
}

// lookup returns the table's number, or false when the changefeed does not have it.
func (t tableIndex) lookup(id int64) (int, bool) {
	if t.ids == nil {
		if id < t.first || id-t.first >= int64(t.n) {
			return 0, false
		}
		return int(id - t.first), true
	}
	i, ok := slices.BinarySearch(t.ids, id)
	return i, ok
}

func (t tableIndex) has(id int64) bool {
	_, ok := t.lookup(id)
	return ok
}

// id returns the ID of table number i.
func (t tableIndex) id(i int) int64 {
	if t.ids == nil {
		return t.first + int64(i)
	}
	return t.ids[i]
}

func (t tableIndex) len() int { return t.n }

package dispatchermanager

import (
	"bytes"
	"fmt"
	"slices"
	"sort"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// indexKey groups working dispatchers: spans only conflict within one table and mode.
type indexKey struct {
	mode  heartbeatpb.Mode
	table int64
}

// workingIndex holds the working dispatchers of each table and mode sorted by start key. They
// never overlap (I1), so sorted by start they are sorted by end too and one binary search finds
// any overlap.
//
// Most tables have one span: those sit in one, a pointer each, and only a table with two or
// more working dispatchers in a mode has a list in many. A list for every table was a slice
// header in the map plus a one-pointer array, 63 B a dispatcher of a worker's heap at 333,333
// one-span tables.
type workingIndex struct {
	one  map[indexKey]*dispatcherEntry
	many map[indexKey][]*dispatcherEntry // never fewer than two
}

func newWorkingIndex() workingIndex {
	return workingIndex{one: map[indexKey]*dispatcherEntry{}, many: map[indexKey][]*dispatcherEntry{}}
}

// overlapping returns a working dispatcher sharing a key with s in mode, or nil.
func (w workingIndex) overlapping(mode heartbeatpb.Mode, s heartbeatpb.TableSpan) *dispatcherEntry {
	k := indexKey{mode, s.TableId}
	if e := w.one[k]; e != nil {
		if span.Overlap(e.span, s) {
			return e
		}
		return nil
	}
	list := w.many[k]
	i := sort.Search(len(list), func(i int) bool { return bytes.Compare(list[i].span.EndKey, s.StartKey) > 0 })
	if i < len(list) && bytes.Compare(list[i].span.StartKey, s.EndKey) < 0 {
		return list[i]
	}
	return nil
}

func (w workingIndex) insert(e *dispatcherEntry) {
	if other := w.overlapping(e.mode, e.span); other != nil {
		panic(fmt.Sprintf("dispatchermanager: %s overlaps working %s", dispatcher.FormatID(e.id),
			dispatcher.FormatID(other.id)))
	}
	k := indexKey{e.mode, e.span.TableId}
	if only := w.one[k]; only != nil {
		delete(w.one, k)
		if bytes.Compare(only.span.StartKey, e.span.StartKey) < 0 {
			w.many[k] = []*dispatcherEntry{only, e}
		} else {
			w.many[k] = []*dispatcherEntry{e, only}
		}
		return
	}
	list, ok := w.many[k]
	if !ok {
		w.one[k] = e
		return
	}
	i := sort.Search(len(list), func(i int) bool { return bytes.Compare(list[i].span.StartKey, e.span.StartKey) > 0 })
	w.many[k] = slices.Insert(list, i, e)
}

func (w workingIndex) remove(e *dispatcherEntry) {
	k := indexKey{e.mode, e.span.TableId}
	if w.one[k] == e {
		delete(w.one, k)
		return
	}
	list := w.many[k]
	i := sort.Search(len(list), func(i int) bool { return bytes.Compare(list[i].span.StartKey, e.span.StartKey) >= 0 })
	if i >= len(list) || list[i] != e {
		panic(fmt.Sprintf("dispatchermanager: working dispatcher %s missing from index", dispatcher.FormatID(e.id)))
	}
	list = slices.Delete(list, i, i+1)
	if len(list) == 1 {
		delete(w.many, k)
		w.one[k] = list[0]
		return
	}
	w.many[k] = list
}

// each calls fn with every table and mode's working dispatchers, sorted by start key (checks).
func (w workingIndex) each(fn func(k indexKey, list []*dispatcherEntry)) {
	for k, e := range w.one {
		fn(k, []*dispatcherEntry{e})
	}
	for k, list := range w.many {
		fn(k, list)
	}
}

// shapeErr reports a table listed in both halves or a list in many of fewer than two (checks).
func (w workingIndex) shapeErr() error {
	for k, list := range w.many {
		if len(list) < 2 {
			return fmt.Errorf("table %d mode %d: a list of %d in many", k.table, k.mode, len(list))
		}
		if w.one[k] != nil {
			return fmt.Errorf("table %d mode %d: in one and in many", k.table, k.mode)
		}
	}
	return nil
}

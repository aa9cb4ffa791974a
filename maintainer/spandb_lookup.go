package maintainer

import (
	"slices"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// Lookups over the span DB that change nothing.

// findSpan returns the live span among sids that equals s in mode.
func findSpan(db *spanDB, sids []spanID, s heartbeatpb.TableSpan, mode heartbeatpb.Mode) (spanID, bool) {
	for _, sid := range sids {
		r := db.get(sid)
		if !r.retired() && r.mode == mode && span.Equal(db.spanOf(sid), s) {
			return sid, true
		}
	}
	return 0, false
}

// live finds the record of s in mode that is still in the schedule.
func (db *spanDB) live(s heartbeatpb.TableSpan, mode heartbeatpb.Mode) (spanID, bool) {
	return findSpan(db, db.byTable.get(s.TableId), s, mode)
}

// twin returns the span of the same key range in the other mode, if the DB holds one.
func (db *spanDB) twin(sid spanID) (spanID, bool) {
	r := db.get(sid)
	for _, o := range db.byTable.get(r.table) {
		if o != sid && db.get(o).mode != r.mode && span.Equal(db.spanOf(o), db.spanOf(sid)) {
			return o, true
		}
	}
	return 0, false
}

// missingFrom returns, in ID order, the free replicating spans of node whose dispatcher is not
// in reported: a full account of the node's set (a listing, or its mirror when the digest
// matches) that leaves one out means the node lost it.
func missingFrom(db *spanDB, node string, reported func(heartbeatpb.DispatcherID) bool) []spanID {
	// Walk the node's set unsorted (this runs every second per node) and sort only the few
	// missing ones, which keeps the absent queue's order deterministic.
	var missing []spanID
	for _, sid := range db.byNode[node] {
		r := db.get(sid)
		if r.free() && !reported(r.dispatcher) {
			missing = append(missing, sid)
		}
	}
	slices.Sort(missing)
	return missing
}

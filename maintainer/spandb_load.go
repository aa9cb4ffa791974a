package maintainer

import (
	"github.com/tidemark/tidemark/bootstrap"
	"github.com/tidemark/tidemark/heartbeatpb"
)

// load empties the DB and fills it with a restored plan's spans: the replicating ones, then the
// absent ones, exactly as inserting them one by one would (same IDs, same absent order), with
// room for spare more (resumed operators' spans, inserted after).
//
// One by one, each span cost a map lookup and an append in byTable and byNode; at a million
// one-span tables that was a million small slices and three hashes a span, 60% of a restore.
// Here both lists, sorted by table as the plan keeps them, are walked once to count: every
// table's IDs get a piece of one shared array (each piece at full capacity, so a later append
// moves that table to an array of its own), and every table and node one map insert. Lists not
// sorted by table (never from bootstrap.Restore) take the one-by-one path.
func (db *spanDB) load(replicating []bootstrap.Placement, absent []bootstrap.Absent, spare int) {
	total := len(replicating) + len(absent)
	db.reset(total + spare)
	runs, ok := tableRuns(replicating, absent)
	if !ok {
		insertPlan(db, replicating, absent)
		return
	}
	db.absent.in = make([]bool, 0, total+spare)
	// Tables: run k's IDs are backing[off[k]:off[k+1]], its replicating ones first.
	backing := make([]spanID, total)
	// The dense run of tableSpans covers the tables from the first while at least half the IDs
	// are in use (gaps are tables whose spans resumed operators hold); sparse IDs past it go to
	// its map, and room for all of them would be wasted.
	if len(runs) > 0 {
		db.byTable.reserve(runs[0].table, denseExtent(len(runs), func(i int) int64 { return runs[i].table }))
	}
	off := make([]int, len(runs)+1)
	for k, r := range runs {
		off[k+1] = off[k] + int(r.replicating+r.absent)
	}
	// Nodes: sized by a count first, so attach only appends.
	perNode := make(map[string]int)
	for i := range replicating {
		perNode[replicating[i].Node]++
	}
	for n, c := range perNode {
		db.byNode[n] = make([]spanID, 0, c)
	}
	k, fill := 0, 0
	for i := range replicating {
		p := &replicating[i]
		for runs[k].table != p.Span.TableId || fill == int(runs[k].replicating) {
			k, fill = k+1, 0
		}
		id := db.appendRecord(p.Span, p.Mode, p.Checkpoint)
		backing[off[k]+fill] = id
		fill++
		db.setLife(id, lifeReplicating)
		db.attach(id, p.Node, p.Dispatcher)
	}
	k, fill = 0, 0
	for i := range absent {
		a := &absent[i]
		for runs[k].table != a.Span.TableId || fill == int(runs[k].absent) {
			k, fill = k+1, 0
		}
		id := db.appendRecord(a.Span, a.Mode, a.ResumeTs)
		backing[off[k]+int(runs[k].replicating)+fill] = id
		fill++
		db.absent.push(id)
	}
	// Set once filled: a table of one span keeps the span itself, not the backing.
	for k, r := range runs {
		db.byTable.set(r.table, backing[off[k]:off[k+1]:off[k+1]])
	}
}

// insertPlan is load's one-by-one path.
func insertPlan(db *spanDB, replicating []bootstrap.Placement, absent []bootstrap.Absent) {
	for _, p := range replicating {
		db.insertReplicating(p.Span, p.Mode, p.Node, p.Dispatcher, p.Checkpoint)
	}
	for _, a := range absent {
		db.insertAbsent(a.Span, a.Mode, a.ResumeTs)
	}
}

// tableRun is one table's share of a plan: how many of its spans replicate and how many are absent.
type tableRun struct {
	table               int64
	replicating, absent int32
}

// tableRuns merges the two lists' tables in order, or reports false if either is not sorted
// by table.
func tableRuns(replicating []bootstrap.Placement, absent []bootstrap.Absent) ([]tableRun, bool) {
	// Sized first: grown by appends, a million runs were most of a load's time.
	bound := 0
	for i := range replicating {
		if i == 0 || replicating[i].Span.TableId != replicating[i-1].Span.TableId {
			bound++
		}
	}
	for i := range absent {
		if i == 0 || absent[i].Span.TableId != absent[i-1].Span.TableId {
			bound++
		}
	}
	runs := make([]tableRun, 0, bound)
	i, j := 0, 0
	last := int64(-1)
	for i < len(replicating) || j < len(absent) {
		t := int64(-1)
		if i < len(replicating) {
			t = replicating[i].Span.TableId
		}
		if j < len(absent) && (t < 0 || absent[j].Span.TableId < t) {
			t = absent[j].Span.TableId
		}
		if t <= last {
			return nil, false // out of order (or a negative ID, which Restore never keeps)
		}
		r := tableRun{table: t}
		for ; i < len(replicating) && replicating[i].Span.TableId == t; i++ {
			r.replicating++
		}
		for ; j < len(absent) && absent[j].Span.TableId == t; j++ {
			r.absent++
		}
		runs = append(runs, r)
		last = t
	}
	return runs, true
}

// appendRecord adds an absent record (insert without the table index, which load fills).
func (db *spanDB) appendRecord(s heartbeatpb.TableSpan, mode heartbeatpb.Mode, checkpoint uint64) spanID {
	id := spanID(len(db.recs))
	db.recs = append(db.recs, spanRecord{table: s.TableId, keys: db.keys.put(s), mode: mode, life: lifeAbsent})
	db.cps = append(db.cps, checkpoint)
	db.absent.grow(len(db.recs))
	db.counts[stateAbsent]++
	return id
}

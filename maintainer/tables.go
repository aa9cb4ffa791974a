package maintainer

import (
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/bootstrap"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// tableChanges applies table additions and removals to the span DB. Removed tables' spans leave
// through their operators' ends and Removes; a table that comes back meanwhile is inserted
// afresh once its old spans are all gone. The maps are created on first use.
type tableChanges struct {
	ops *opRunner
	// gone: tables that left the config and still have spans in the DB; readd: those of them
	// that came back meanwhile.
	gone, readd map[int64]bool
}

// UpdateConfig takes a changed changefeed config (from etcd): new tables' spans become absent
// and get placed by the basic scheduler; removed tables' operators end (OnTableRemoved), their
// dispatchers are removed and their spans leave the DB. Thresholds and loads take effect at
// once. Every ready node is sent the new config until it confirms it. Redo cannot change on a
// running changefeed. On error nothing changes.
func (m *Maintainer) UpdateConfig(cfg *heartbeatpb.ChangefeedConfig, now time.Time) error {
	switch {
	case cfg == nil:
		return fmt.Errorf("%w: update: nil config", ErrInvalid)
	case cfg.Id != m.cfg.Changefeed:
		return fmt.Errorf("%w: update: config of %q, this is %q", ErrInvalid, cfg.Id, m.cfg.Changefeed)
	case cfg.Redo != m.cfg.ChangefeedConfig.Redo:
		return fmt.Errorf("%w: update: redo cannot change on a running changefeed", ErrInvalid)
	}
	if err := bootstrap.ValidateConfig(cfg); err != nil {
		return fmt.Errorf("%w: update: %v", ErrInvalid, err)
	}
	m.now = now
	old := tableSet(m.cfg.ChangefeedConfig)
	next := compactConfig(cfg)
	m.cfg.ChangefeedConfig = next
	m.config.changed = true
	for id, n := range m.nodes.live {
		if n.state == nodeReady {
			m.config.push(m.out, id, now)
		}
	}
	if !m.bootstrapped {
		return nil // the restore reads the new config; nodes still bootstrapping get it too
	}
	var added, removed []int64
	for _, t := range tableIDs(next) {
		if !old[t] {
			added = append(added, t)
		}
		delete(old, t)
	}
	for t := range old {
		removed = append(removed, t)
	}
	slices.Sort(removed)
	m.tables.apply(added, removed, insertFrom(m.cp.computed, m.cfg.ChangefeedConfig), now)
	m.log.Info("changefeed config updated", zap.Int64s("added", added), zap.Int64s("removed", removed),
		zap.Uint64("split-threshold", next.SplitLoadThreshold), zap.Uint64("merge-threshold", next.MergeLoadThreshold))
	m.tables.collect(insertFrom(m.cp.computed, m.cfg.ChangefeedConfig), now)
	return nil
}

// insertFrom is the checkpoint a new table's spans start from: the changefeed checkpoint, which
// every span has reached; the new table has no history before it in this changefeed.
func insertFrom(checkpoint uint64, cfg *heartbeatpb.ChangefeedConfig) uint64 {
	return max(checkpoint, cfg.StartTs)
}

// apply ends the removed tables' operators and inserts the added tables (from checkpoint from),
// except those whose old spans must go first.
func (tc *tableChanges) apply(added, removed []int64, from uint64, now time.Time) {
	r := tc.ops
	for _, t := range removed {
		mapSet(&tc.gone, t, true)
		delete(tc.readd, t)
		r.out.emit(r.ctl.OnTableRemoved(t, now))
	}
	r.applyFinished()
	for _, t := range added {
		if tc.gone[t] {
			mapSet(&tc.readd, t, true) // its old spans go first
			continue
		}
		tc.insert(t, from)
	}
}

// insert adds a table's spans, absent, in every mode, from checkpoint from.
func (tc *tableChanges) insert(t int64, from uint64) {
	db := tc.ops.db
	db.insertAbsent(span.TableSpan(t), heartbeatpb.ModeDefault, from)
	if tc.ops.cfg.ChangefeedConfig.Redo {
		db.insertAbsent(span.TableSpan(t), heartbeatpb.ModeRedo, from)
	}
}

func tableSet(cfg *heartbeatpb.ChangefeedConfig) map[int64]bool {
	ids := tableIDs(cfg)
	out := make(map[int64]bool, len(ids))
	for _, t := range ids {
		out[t] = true
	}
	return out
}

// compactConfig is the maintainer's own copy of a validated config. A changefeed of more than
// heartbeatpb.LegacyTablesMax tables keeps its tables as the catalogue alone: one by one they
// were 16 MB of the maintainer's heap at a million tables, read only when a restore or a config
// change needs them (both take the catalogue), and bootstrap requests carry no list at that size
// anyway (heartbeatpb.WireConfig). A smaller one keeps its list, which older nodes still read.
func compactConfig(cfg *heartbeatpb.ChangefeedConfig) *heartbeatpb.ChangefeedConfig {
	next := *cfg
	if len(cfg.Tables) <= heartbeatpb.LegacyTablesMax {
		next.Tables = slices.Clone(cfg.Tables)
		return &next
	}
	cat := heartbeatpb.CompactTables(cfg.Tables)
	next.Tables, next.Catalogue = nil, &cat
	return &next
}

// tableIDs lists cfg's table IDs: its list, or its catalogue's when it keeps only that.
func tableIDs(cfg *heartbeatpb.ChangefeedConfig) []int64 {
	if c := cfg.CatalogueOnly(); c != nil {
		return c.AppendIDs(make([]int64, 0, c.Count()))
	}
	ids := make([]int64, len(cfg.Tables))
	for i, t := range cfg.Tables {
		ids[i] = t.TableId
	}
	return ids
}

// collect moves the spans of removed tables out: free absent spans are retired, free
// replicating ones get a Remove; spans an operator holds wait for it. A table is forgotten once
// none of its spans is left (and re-inserted from checkpoint from if it came back meanwhile).
func (tc *tableChanges) collect(from uint64, now time.Time) {
	if len(tc.gone) == 0 {
		return
	}
	db := tc.ops.db
	tables := make([]int64, 0, len(tc.gone))
	for t := range tc.gone {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	for _, t := range tables {
		for _, sid := range slices.Clone(db.byTable.get(t)) {
			r := db.get(sid)
			switch {
			case r.op != noOp:
			case r.life == lifeAbsent:
				tc.ops.retire(sid)
			case r.life == lifeReplicating:
				tc.ops.remove(sid, now)
			}
		}
		if len(db.byTable.get(t)) > 0 {
			continue
		}
		delete(tc.gone, t)
		tc.ops.log.Info("table removed from the schedule", zap.Int64("table", t))
		if tc.readd[t] {
			delete(tc.readd, t)
			tc.insert(t, from)
		}
	}
}

package maintainer

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/bootstrap"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

// schedState is what the split and merge schedulers, table changes and config pushes keep
// between rounds. Every map is created on first use, so the zero value is ready.
type schedState struct {
	// gone: tables that left the config and still have spans in the DB; readd: those of them
	// that came back meanwhile, inserted afresh once the old spans are all gone.
	gone, readd map[int64]bool
	// configSent: ready nodes that have not confirmed the latest config, and when it was last
	// sent to them. configChanged: the config changed during this term.
	configSent    map[string]time.Time
	configChanged bool
	// loads: the last load report of each replicating span, with its hot and cold streaks;
	// hot and cold hold the spans whose streak reached LoadReports.
	loads     map[spanID]loadTrack
	hot, cold map[spanID]struct{}
	// cooldown: no split or merge of the table before this time.
	cooldown map[int64]time.Time
	outMerge map[string][]heartbeatpb.MergeDispatcherRequest
}

// loadTrack is one span's recent load reports.
type loadTrack struct {
	load      uint64
	hot, cold uint16 // consecutive reports above the split / below the merge threshold
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
	next := *cfg
	next.Tables = slices.Clone(cfg.Tables)
	m.cfg.ChangefeedConfig = &next
	m.sched.configChanged = true
	for id, n := range m.nodes {
		if n.state == nodeReady {
			m.pushConfig(id, now)
		}
	}
	if !m.bootstrapped {
		return nil // the restore reads the new config; nodes still bootstrapping get it too
	}
	var added, removed []int64
	for _, t := range next.Tables {
		if !old[t.TableId] {
			added = append(added, t.TableId)
		}
		delete(old, t.TableId)
	}
	for t := range old {
		removed = append(removed, t)
	}
	slices.Sort(removed)
	for _, t := range removed {
		mapSet(&m.sched.gone, t, true)
		delete(m.sched.readd, t)
		m.emit(m.ctl.OnTableRemoved(t, now))
	}
	m.applyFinished(now)
	for _, t := range added {
		if m.sched.gone[t] {
			mapSet(&m.sched.readd, t, true) // its old spans go first
			continue
		}
		m.insertTable(t)
	}
	m.log.Info("changefeed config updated", zap.Int64s("added", added), zap.Int64s("removed", removed),
		zap.Uint64("split-threshold", next.SplitLoadThreshold), zap.Uint64("merge-threshold", next.MergeLoadThreshold))
	m.collectRemovedTables(now)
	return nil
}

// insertTable adds a table's spans, absent, in every mode, from the changefeed checkpoint: every
// span has reached it, and the new table has no history before it in this changefeed.
func (m *Maintainer) insertTable(t int64) {
	from := max(m.checkpoint, m.cfg.ChangefeedConfig.StartTs)
	m.db.insertAbsent(span.TableSpan(t), heartbeatpb.ModeDefault, from)
	if m.cfg.ChangefeedConfig.Redo {
		m.db.insertAbsent(span.TableSpan(t), heartbeatpb.ModeRedo, from)
	}
}

func tableSet(cfg *heartbeatpb.ChangefeedConfig) map[int64]bool {
	out := make(map[int64]bool, len(cfg.Tables))
	for _, t := range cfg.Tables {
		out[t.TableId] = true
	}
	return out
}

// collectRemovedTables moves the spans of removed tables out: free absent spans are retired,
// free replicating ones get a Remove; spans an operator holds wait for it. A table is forgotten
// once none of its spans is left (and re-inserted if it came back meanwhile).
func (m *Maintainer) collectRemovedTables(now time.Time) {
	if len(m.sched.gone) == 0 {
		return
	}
	tables := make([]int64, 0, len(m.sched.gone))
	for t := range m.sched.gone {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	for _, t := range tables {
		for _, sid := range slices.Clone(m.db.byTable[t]) {
			r := m.db.get(sid)
			switch {
			case r.op != noOp:
			case r.state == stateAbsent:
				m.retireSpan(sid)
			case r.state == stateReplicating:
				m.startRemove(sid, now)
			}
		}
		if len(m.db.byTable[t]) > 0 {
			continue
		}
		delete(m.sched.gone, t)
		m.log.Info("table removed from the schedule", zap.Int64("table", t))
		if m.sched.readd[t] {
			delete(m.sched.readd, t)
			m.insertTable(t)
		}
	}
}

// startRemove creates the Remove of one replicating span's dispatcher; false when the controller
// refused it (limits): the next round tries again.
func (m *Maintainer) startRemove(sid spanID, now time.Time) bool {
	r := m.db.get(sid)
	opID := heartbeatpb.OperatorID{Epoch: m.cfg.Epoch, Seq: m.nextOperator + 1}
	op, err := operator.NewRemove(opID, r.span, r.mode, r.node, r.dispatcher, m.db.checkpoint(sid), now)
	if err != nil {
		panic("maintainer: span DB holds an invalid remove: " + err.Error())
	}
	if !m.addOp(op, r.span, now) {
		return false
	}
	m.db.beginOp(sid, opID)
	m.opSpans[opID] = []spanID{sid}
	return true
}

// addOp hands op to the controller and sends its first requests, taking its operator ID;
// false when the controller refused it for busy spans or limits.
func (m *Maintainer) addOp(op operator.Operator, s heartbeatpb.TableSpan, now time.Time) bool {
	out, err := m.ctl.Add(op, now)
	if err != nil {
		if !errors.Is(err, operator.ErrSpanBusy) && !errors.Is(err, operator.ErrLimit) {
			panic("maintainer: unexpected controller error: " + err.Error())
		}
		m.log.Debug("operator deferred", zap.Stringer("kind", op.Type()), zap.String("span", span.String(s)), zap.Error(err))
		return false
	}
	m.nextOperator++
	m.emit(out)
	return true
}

// retireSpan takes a span out of the schedule for good.
func (m *Maintainer) retireSpan(sid spanID) {
	m.db.retire(sid)
	delete(m.sched.loads, sid)
	delete(m.sched.hot, sid)
	delete(m.sched.cold, sid)
}

// retire turns the record into a tombstone: out of every index and count, never absent (so the
// absent queue skips it), never the minimum checkpoint. IDs stay stable for whoever holds one.
func (db *spanDB) retire(id spanID) {
	r := &db.recs[id]
	if r.retired {
		return
	}
	db.detach(id)
	db.counts[r.state]--
	r.retired, r.op, r.state = true, noOp, stateScheduling
	db.cps[id] = math.MaxUint64
	t := r.span.TableId
	ids := db.byTable[t]
	if i := slices.Index(ids, id); i >= 0 {
		ids = slices.Delete(ids, i, i+1)
	}
	if len(ids) == 0 {
		delete(db.byTable, t)
	} else {
		db.byTable[t] = ids
	}
}

// pushConfig sends node the current config (in a bootstrap request, which a node takes as a
// config update; its answer, ignored otherwise, confirms it).
func (m *Maintainer) pushConfig(node string, now time.Time) {
	mapSet(&m.sched.configSent, node, now)
	m.outBootstrap[node] = true
}

// resendConfig repeats the config to nodes that have not confirmed it, on the resend throttle.
func (m *Maintainer) resendConfig(now time.Time) {
	for id, at := range m.sched.configSent {
		switch {
		case m.nodes[id] == nil:
			delete(m.sched.configSent, id)
		case now.Sub(at) >= m.cfg.ResendInterval:
			m.pushConfig(id, now)
		}
	}
}

// configAcked: node answered a bootstrap request, so it holds the config sent last.
func (m *Maintainer) configAcked(node string) { delete(m.sched.configSent, node) }

// configSuspect: node refused a request after the config changed in this term; it may have
// missed the update (an old answer may have been taken for its confirmation), so it is sent
// again. Idempotent on the node.
func (m *Maintainer) configSuspect(node string, now time.Time) {
	if !m.sched.configChanged || m.nodes[node] == nil || m.nodes[node].state != nodeReady {
		return
	}
	if _, pending := m.sched.configSent[node]; !pending {
		m.pushConfig(node, now)
	}
}

// queueMerge batches a merge request for node.
func (m *Maintainer) queueMerge(node string, req *heartbeatpb.MergeDispatcherRequest) {
	if m.sched.outMerge == nil {
		m.sched.outMerge = make(map[string][]heartbeatpb.MergeDispatcherRequest)
	}
	m.sched.outMerge[node] = append(m.sched.outMerge[node], *req)
}

// mapSet sets (*mp)[k] = v, creating the map on first use.
func mapSet[K comparable, V any](mp *map[K]V, k K, v V) {
	if *mp == nil {
		*mp = make(map[K]V)
	}
	(*mp)[k] = v
}

package dispatchermanager

import (
	"fmt"
	"sort"
	"time"

	"github.com/pingcap/failpoint"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// mergeEntry is one in-flight merge in the merge map.
type mergeEntry struct {
	req      heartbeatpb.MergeDispatcherRequest
	stage    heartbeatpb.MergeStage
	mergedTs uint64 // fixed once every source stopped
}

func (e *mergeEntry) inFlight() heartbeatpb.InFlightMerge {
	return heartbeatpb.InFlightMerge{Request: e.req, Stage: e.stage, MergedCheckpointTs: e.mergedTs}
}

// onMerge handles one well-formed merge request: a resend, a refusal or a new entry. The work
// itself happens one stage per Tick, so every stage is visible to a bootstrap in between.
func (m *Manager) onMerge(req *heartbeatpb.MergeDispatcherRequest) {
	if e, ok := m.journal.merges[req.MergedId]; ok {
		if e.req.Operator.Id == req.Operator.Id {
			m.table.resendMerge(e)
			return
		}
		m.reject(req.Operator.Id, req.MergedId, fmt.Sprintf("merge into %s already in flight for operator %s",
			dispatcher.FormatID(req.MergedId), fmtOp(e.req.Operator.Id)))
		return
	}
	if reason := m.admission().merge(req); reason != "" {
		m.reject(req.Operator.Id, req.MergedId, reason)
		return
	}
	failpoint.Inject("dm-before-journal-update", func() {})
	m.journal.merges[req.MergedId] = &mergeEntry{req: *req, stage: heartbeatpb.MergeAccepted}
	m.journal.inMerge[req.MergedId] = req.MergedId
	for _, id := range req.SourceIds {
		m.journal.inMerge[id] = req.MergedId
	}
	failpoint.Inject("dm-after-journal-update", func() {})
	m.log.Info("merge request accepted", zapOp(req.Operator.Id), zapID(req.MergedId),
		zap.Stringer("span", span.KeyOf(req.MergedSpan)), zap.Int("sources", len(req.SourceIds)))
}

// resendMerge reports the statuses of a merge again.
func (t *dispatcherTable) resendMerge(e *mergeEntry) {
	for _, id := range append([]heartbeatpb.DispatcherID{e.req.MergedId}, e.req.SourceIds...) {
		if d, ok := t.dispatchers[id]; ok {
			t.markDirty(d)
		}
	}
}

// advanceMerges moves every unfinished merge one stage, in merged-ID order.
func (m *Manager) advanceMerges(now time.Time) {
	var pending []heartbeatpb.DispatcherID
	for id, e := range m.journal.merges {
		if e.stage != heartbeatpb.MergeDone {
			pending = append(pending, id)
		}
	}
	sort.Slice(pending, func(i, j int) bool { return pending[i].Less(pending[j]) })
	for _, id := range pending {
		e := m.journal.merges[id]
		if err := m.advanceMerge(e, now); err != nil {
			m.log.Warn("merge step failed; will retry", zapOp(e.req.Operator.Id), zapID(id),
				zap.Stringer("stage", e.stage), zap.Error(err))
		}
	}
}

func (m *Manager) advanceMerge(e *mergeEntry, now time.Time) error {
	op := e.req.Operator.Id
	switch e.stage {
	case heartbeatpb.MergeAccepted:
		for _, id := range e.req.SourceIds {
			src, ok := m.table.dispatchers[id]
			if !ok {
				panic(fmt.Sprintf("dispatchermanager: merge source %s vanished", dispatcher.FormatID(id)))
			}
			if src.state == heartbeatpb.StateWorking {
				if err := m.table.stopDispatcher(src, op, now); err != nil {
					return err
				}
			}
		}
		// The merged dispatcher starts where the sources are durable: flush first, and with a
		// failing sink start lower (a replay) rather than above what a crash would keep.
		m.sink.flushDurable(m.cfg.Factory, &m.table, now, m.log)
		var minTs uint64
		for i, id := range e.req.SourceIds {
			if src := m.table.dispatchers[id]; i == 0 || src.durable < minTs {
				minTs = src.durable
			}
		}
		e.setStage(m.log, heartbeatpb.MergeSourcesStopped, minTs)
	case heartbeatpb.MergeSourcesStopped:
		cfg := heartbeatpb.DispatcherConfig{Id: e.req.MergedId, Span: e.req.MergedSpan, StartTs: e.mergedTs, Mode: e.req.Mode}
		table, ok := m.tables.Lookup(cfg.Span.TableId)
		if !ok {
			return fmt.Errorf("dispatchermanager: table %d left the changefeed", cfg.Span.TableId)
		}
		d, err := m.cfg.Factory.New(cfg, table)
		if err != nil {
			return fmt.Errorf("dispatchermanager: create merged %s: %w", dispatcher.FormatID(cfg.Id), err)
		}
		m.table.addWorking(d, cfg)
		e.setStage(m.log, heartbeatpb.MergeCreated, e.mergedTs)
	case heartbeatpb.MergeCreated:
		for _, id := range e.req.SourceIds {
			m.table.dropRecord(op, id)
		}
		e.setStage(m.log, heartbeatpb.MergeDone, e.mergedTs)
	}
	return nil
}

func (e *mergeEntry) setStage(log *zap.Logger, stage heartbeatpb.MergeStage, mergedTs uint64) {
	failpoint.Inject("dm-before-journal-update", func() {})
	e.stage, e.mergedTs = stage, mergedTs
	failpoint.Inject("dm-after-journal-update", func() {})
	log.Info("merge advanced", zapOp(e.req.Operator.Id), zapID(e.req.MergedId),
		zap.Stringer("stage", stage), zap.Uint64("merged-ts", mergedTs))
}

package dispatchermanager

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/pingcap/failpoint"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// journalEntry is one in-flight schedule request in the current or redo map.
type journalEntry struct {
	req     heartbeatpb.ScheduleDispatcherRequest
	stage   heartbeatpb.JournalStage
	finalTs uint64 // remove half: the checkpoint the dispatcher stopped at
	// warming: a prepare's dispatcher, prepared from warmingCfg, not yet warm (prepare.go).
	warming    dispatcher.Prepared
	warmingCfg heartbeatpb.DispatcherConfig
}

func (j *journalEntry) inFlight() heartbeatpb.InFlightOperator {
	return heartbeatpb.InFlightOperator{Request: j.req, Stage: j.stage, FinalCheckpointTs: j.finalTs}
}

// onSchedule handles one well-formed schedule request: a resend, a refusal or a new entry.
func (m *Manager) onSchedule(req *heartbeatpb.ScheduleDispatcherRequest, now time.Time) {
	key := span.KeyOf(req.Config.Span)
	journal := m.journal.journalOf(req.Config.Mode)
	if e, ok := journal[key]; ok {
		sameOp := e.req.Operator.Id == req.Operator.Id && e.req.Config.Id == req.Config.Id
		if sameOp && e.req.Action == req.Action {
			m.resend(e, now)
			return
		}
		if sameOp && e.req.Action != heartbeatpb.ActionRemove && req.Action == heartbeatpb.ActionRemove {
			m.cancelCreate(e, req, now)
			return
		}
		if sameOp && e.req.Action == heartbeatpb.ActionPrepare && req.Action == heartbeatpb.ActionCreate {
			m.replaceEntry(e, req, now) // the commit
			return
		}
		if sameOp && req.Action == heartbeatpb.ActionPrepare {
			// A late prepare after its commit or take-back: the current state answers it.
			m.resend(e, now)
			return
		}
		m.reject(req.Operator.Id, req.Config.Id, fmt.Sprintf("span %s has an in-flight %s of operator %s",
			key, e.req.Action, fmtOp(e.req.Operator.Id)))
		return
	}
	if reason := m.admission().schedule(req); reason != "" {
		m.reject(req.Operator.Id, req.Config.Id, reason)
		return
	}
	failpoint.Inject("dm-before-journal-update", func() {})
	e := &journalEntry{req: *req, stage: heartbeatpb.StageAccepted}
	journal[key] = e
	failpoint.Inject("dm-after-journal-update", func() {})
	m.log.Debug("schedule request accepted", zapOp(req.Operator.Id), zapID(req.Config.Id),
		zap.Stringer("span", key), zap.Stringer("action", req.Action), zap.Stringer("type", req.OperatorType))
	m.apply(e, now)
}

// apply does the local effect of an accepted entry; on failure the entry stays StageAccepted and
// is retried on the next Tick or resend.
func (m *Manager) apply(j *journalEntry, now time.Time) {
	var err error
	switch j.req.Action {
	case heartbeatpb.ActionCreate:
		err = m.applyCreate(j)
	case heartbeatpb.ActionPrepare:
		err = m.applyPrepare(j)
	default:
		err = m.applyRemove(j, now)
	}
	if errors.Is(err, errWarming) {
		return // looked at again on the next Tick, quietly: warming up takes a few ticks
	}
	if err != nil {
		m.log.Warn("schedule request not applied yet; will retry", zapOp(j.req.Operator.Id),
			zapID(j.req.Config.Id), zap.Error(err))
		return
	}
	failpoint.Inject("dm-before-journal-update", func() {})
	j.stage = heartbeatpb.StageApplied
	failpoint.Inject("dm-after-journal-update", func() {})
}

func (m *Manager) applyCreate(j *journalEntry) error {
	cfg := j.req.Config
	if e, ok := m.table.dispatchers[cfg.Id]; ok && e.state == heartbeatpb.StateWorking {
		m.table.markDirty(e) // already there: report it again so the operator sees it
		return nil
	} else if ok && e.state == heartbeatpb.StatePrepared {
		return m.table.commitPrepared(e, cfg)
	}
	if other := m.table.working.overlapping(cfg.Mode, cfg.Span); other != nil {
		return fmt.Errorf("dispatchermanager: span %s overlaps working dispatcher %s",
			span.String(cfg.Span), dispatcher.FormatID(other.id))
	}
	if cfg.StartTs == 0 {
		// No start given: the changefeed checkpoint is at or below every span's checkpoint, so
		// starting there can repeat work but never skip any (I2).
		cfg.StartTs = max(m.checkpoint, m.changefeed.StartTs)
	}
	table, ok := m.tables.Lookup(cfg.Span.TableId)
	if !ok {
		return fmt.Errorf("dispatchermanager: table %d left the changefeed", cfg.Span.TableId)
	}
	d, err := m.cfg.Factory.New(cfg, table)
	if err != nil {
		return fmt.Errorf("dispatchermanager: create %s: %w", dispatcher.FormatID(cfg.Id), err)
	}
	m.table.addWorking(d, cfg)
	m.log.Debug("dispatcher created", zapID(cfg.Id), zap.Stringer("span", span.KeyOf(cfg.Span)),
		zap.Stringer("mode", cfg.Mode), zap.Uint64("start-ts", cfg.StartTs), zapOp(j.req.Operator.Id))
	return nil
}

func (m *Manager) applyRemove(j *journalEntry, now time.Time) error {
	id := j.req.Config.Id
	e, ok := m.table.dispatchers[id]
	if !ok {
		// Never here or long gone: removed is what the operator waits for, so say so.
		m.table.removed = append(m.table.removed, heartbeatpb.DispatcherStatus{
			Id: id, Span: j.req.Config.Span, Mode: j.req.Config.Mode, State: heartbeatpb.StateRemoved,
		})
		return nil
	}
	if e.state == heartbeatpb.StatePrepared {
		m.table.abandonPrepared(e, "taken back")
		j.finalTs = e.checkpoint
		return nil
	}
	if e.state == heartbeatpb.StateWorking {
		if err := m.table.stopDispatcher(e, j.req.Operator.Id, now); err != nil {
			return err
		}
		m.log.Debug("dispatcher stopped", zapID(id), zap.Stringer("span", span.KeyOf(e.span)),
			zap.Uint64("final-ts", e.checkpoint), zapOp(j.req.Operator.Id))
	}
	m.table.markDirty(e)
	j.finalTs = e.checkpoint
	return nil
}

// resend handles the same request arriving again: finish it if it is not done, and report its
// status again either way because the maintainer evidently did not see it. Every resend gets an
// answer: a status, or a refusal when the effect no longer holds.
func (m *Manager) resend(j *journalEntry, now time.Time) {
	if j.stage == heartbeatpb.StageAccepted {
		m.apply(j, now)
		return
	}
	if e, ok := m.table.dispatchers[j.req.Config.Id]; ok {
		m.table.markDirty(e)
		return
	}
	if j.req.Action == heartbeatpb.ActionRemove {
		m.table.removed = append(m.table.removed, heartbeatpb.DispatcherStatus{
			Id: j.req.Config.Id, Span: j.req.Config.Span, Mode: j.req.Config.Mode,
			State: heartbeatpb.StateRemoved, CheckpointTs: j.finalTs,
		})
		return
	}
	// A create that was done, whose dispatcher has since been removed by another operator (a
	// merge, typically, while this entry's acknowledgement was lost). Creating it again could
	// put a second owner on keys that moved on; saying nothing left the operator waiting for a
	// Working report forever (tests/sim/testdata/stale_create.txt). Refuse, stating the fact.
	m.reject(j.req.Operator.Id, j.req.Config.Id, fmt.Sprintf(
		"dispatcher %s was created for operator %s and has since been removed",
		dispatcher.FormatID(j.req.Config.Id), fmtOp(j.req.Operator.Id)))
}

// cancelCreate handles an operator taking back its own create (its phase timed out, or its table
// left): the Remove replaces the Create entry (same span and mode: the journal is keyed by them)
// and is applied like any remove half. A create never applied left no dispatcher, so the remove
// reports it Removed at once and no later retry starts it; an applied one is stopped and leaves a
// removal record with its final checkpoint.
func (m *Manager) cancelCreate(j *journalEntry, req *heartbeatpb.ScheduleDispatcherRequest, now time.Time) {
	m.log.Info("operator cancels its create", zapOp(req.Operator.Id), zapID(req.Config.Id),
		zap.Stringer("span", span.KeyOf(req.Config.Span)), zap.Stringer("stage", j.stage))
	m.replaceEntry(j, req, now)
}

// replaceEntry puts req in j's place (same operator, span and dispatcher) and applies it.
func (m *Manager) replaceEntry(j *journalEntry, req *heartbeatpb.ScheduleDispatcherRequest, now time.Time) {
	m.table.settleWarming(j, req)
	failpoint.Inject("dm-before-journal-update", func() {})
	j.req, j.stage = *req, heartbeatpb.StageAccepted
	failpoint.Inject("dm-after-journal-update", func() {})
	m.apply(j, now)
}

// retryAccepted retries the local effect of every entry not yet applied, in span order.
func (m *Manager) retryAccepted(now time.Time) {
	for _, journal := range []map[span.Key]*journalEntry{m.journal.current, m.journal.redo} {
		var pending []*journalEntry
		for _, j := range journal {
			if j.stage == heartbeatpb.StageAccepted {
				pending = append(pending, j)
			}
		}
		sort.Slice(pending, func(a, b int) bool {
			return span.Compare(pending[a].req.Config.Span, pending[b].req.Config.Span) < 0
		})
		for _, j := range pending {
			m.apply(j, now)
		}
	}
}

// reject refuses a request: logged, and reported to the maintainer with the next heartbeat.
func (m *Manager) reject(op heartbeatpb.OperatorID, id heartbeatpb.DispatcherID, reason string) {
	m.log.Warn("request refused", zapOp(op), zapID(id), zap.String("reason", reason))
	m.rejections = append(m.rejections, heartbeatpb.RequestRejection{OperatorId: op, DispatcherId: id, Reason: reason})
}

func fmtOp(id heartbeatpb.OperatorID) string { return fmt.Sprintf("%d.%d", id.Epoch, id.Seq) }

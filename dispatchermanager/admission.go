package dispatchermanager

import (
	"fmt"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// admission decides whether a new schedule or merge request can be accepted: a read of the
// dispatcher table, the journal, the catalogue and the changefeed's settings, changing nothing.
// A refusal is a reason the node sends back; "" accepts.
type admission struct {
	table   *dispatcherTable
	journal *journal
	tables  *heartbeatpb.TableCatalogue
	redo    bool
	factory dispatcher.Factory
}

// admission is the manager's current view for deciding on a request.
func (m *Manager) admission() admission {
	return admission{table: &m.table, journal: &m.journal, tables: &m.tables,
		redo: m.changefeed != nil && m.changefeed.Redo, factory: m.cfg.Factory}
}

// schedule returns why a new schedule request cannot be accepted, or "".
func (a admission) schedule(req *heartbeatpb.ScheduleDispatcherRequest) string {
	cfg := req.Config
	if _, ok := a.journal.inMerge[cfg.Id]; ok {
		return fmt.Sprintf("dispatcher %s is part of an in-flight merge", dispatcher.FormatID(cfg.Id))
	}
	e, exists := a.table.dispatchers[cfg.Id]
	if exists && (!span.Equal(e.span, cfg.Span) || e.mode != cfg.Mode) {
		return fmt.Sprintf("dispatcher %s exists with span %s mode %s", dispatcher.FormatID(cfg.Id), span.String(e.span), e.mode)
	}
	if req.Action == heartbeatpb.ActionRemove {
		return ""
	}
	if req.Action == heartbeatpb.ActionPrepare {
		if _, ok := a.factory.(dispatcher.Preparer); !ok {
			return "the dispatcher kind cannot prepare (make-before-break); move break-before-make"
		}
	}
	if exists {
		if e.state != heartbeatpb.StateWorking {
			return fmt.Sprintf("dispatcher %s exists and is %s", dispatcher.FormatID(cfg.Id), e.state)
		}
		return "" // already created: a no-op success
	}
	if !a.tables.Contains(cfg.Span.TableId) {
		return fmt.Sprintf("table %d is not part of the changefeed", cfg.Span.TableId)
	}
	if cfg.Mode == heartbeatpb.ModeRedo && !a.redo {
		return "redo is off for the changefeed"
	}
	if other := a.table.working.overlapping(cfg.Mode, cfg.Span); other != nil {
		return fmt.Sprintf("span %s overlaps working dispatcher %s %s", span.String(cfg.Span),
			dispatcher.FormatID(other.id), span.String(other.span))
	}
	// A merge's sources stop before its result starts: their range is taken meanwhile.
	for id, me := range a.journal.merges {
		if me.req.Mode == cfg.Mode && span.Overlap(me.req.MergedSpan, cfg.Span) {
			return fmt.Sprintf("span %s overlaps in-flight merge into %s", span.String(cfg.Span), dispatcher.FormatID(id))
		}
	}
	return ""
}

// merge returns why a new merge request cannot be accepted, or "".
func (a admission) merge(req *heartbeatpb.MergeDispatcherRequest) string {
	if _, ok := a.table.dispatchers[req.MergedId]; ok {
		return fmt.Sprintf("merged dispatcher %s already exists", dispatcher.FormatID(req.MergedId))
	}
	if !a.tables.Contains(req.MergedSpan.TableId) {
		return fmt.Sprintf("table %d is not part of the changefeed", req.MergedSpan.TableId)
	}
	spans := make([]heartbeatpb.TableSpan, 0, len(req.SourceIds))
	for _, id := range req.SourceIds {
		e, ok := a.table.dispatchers[id]
		switch {
		case !ok:
			return fmt.Sprintf("source %s does not exist", dispatcher.FormatID(id))
		case e.state != heartbeatpb.StateWorking:
			return fmt.Sprintf("source %s is %s", dispatcher.FormatID(id), e.state)
		case e.mode != req.Mode:
			return fmt.Sprintf("source %s is mode %s, merge is %s", dispatcher.FormatID(id), e.mode, req.Mode)
		case e.span.TableId != req.MergedSpan.TableId:
			return fmt.Sprintf("source %s is of table %d, merge of %d", dispatcher.FormatID(id), e.span.TableId, req.MergedSpan.TableId)
		}
		if _, busy := a.journal.inMerge[id]; busy {
			return fmt.Sprintf("source %s is part of another merge", dispatcher.FormatID(id))
		}
		if j, busy := a.journal.journalOf(e.mode)[span.KeyOf(e.span)]; busy && j.req.Action == heartbeatpb.ActionRemove {
			return fmt.Sprintf("source %s is being removed by operator %s", dispatcher.FormatID(id), fmtOp(j.req.Operator.Id))
		}
		spans = append(spans, e.span)
	}
	union, err := span.Merge(spans)
	if err != nil {
		return fmt.Sprintf("sources are not adjacent: %v", err)
	}
	if !span.Equal(union, req.MergedSpan) {
		return fmt.Sprintf("sources cover %s, not the merged span %s", span.String(union), span.String(req.MergedSpan))
	}
	return ""
}

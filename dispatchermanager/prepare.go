package dispatchermanager

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// The destination half of a make-before-break Move. A Prepare entry holds a prepared dispatcher
// (state Prepared): in the table, so listings, digests and bootstrap answers carry it, but not in
// the working index, because it owns nothing and writes nothing. The same operator's Create of
// the same dispatcher replaces the entry and commits it from the Create's start ts; its Remove
// replaces it and abandons the dispatcher (Removed at once: nothing was written, so there is no
// final checkpoint to keep). A prepared dispatcher lives only as long as its Prepare entry: when
// the maintainer acknowledges the operator without having committed it (the operator ended,
// or a new maintainer did not resume it), it is abandoned too. So a destination that is never
// committed leaves nothing in the sink, whatever ended its Move.

// preparedDispatcher puts a dispatcher.Prepared in the table's shape. It is never polled (only
// working dispatchers are); Stop and Close abandon it.
type preparedDispatcher struct {
	p    dispatcher.Prepared
	cfg  heartbeatpb.DispatcherConfig
	done bool
}

func (d *preparedDispatcher) ID() heartbeatpb.DispatcherID    { return d.cfg.Id }
func (d *preparedDispatcher) Span() heartbeatpb.TableSpan     { return d.cfg.Span }
func (d *preparedDispatcher) Mode() heartbeatpb.Mode          { return d.cfg.Mode }
func (d *preparedDispatcher) Poll(time.Time) (uint64, uint64) { return d.cfg.StartTs, 0 }
func (d *preparedDispatcher) Stop(time.Time) (uint64, error)  { return d.cfg.StartTs, d.Close() }

func (d *preparedDispatcher) Close() error {
	if d.done {
		return nil
	}
	d.done = true
	return d.p.Close()
}

// errWarming: the prepared dispatcher is not warm yet (dispatcher.Warmer); the entry stays
// accepted, unreported, and each Tick looks again.
var errWarming = errors.New("dispatchermanager: prepared dispatcher still warming up")

// applyPrepare prepares the entry's dispatcher from its start ts. Until the dispatcher is warm
// it lives on the entry, outside the table: the maintainer hears of it (state Prepared, which
// stops the origin) and the node's digest counts it only once a commit would be quick.
func (m *Manager) applyPrepare(j *journalEntry) error {
	cfg := j.req.Config
	if e, ok := m.table.dispatchers[cfg.Id]; ok {
		m.table.markDirty(e) // already there (prepared, or committed by a later request): report it again
		return nil
	}
	if j.warming == nil {
		pr, ok := m.cfg.Factory.(dispatcher.Preparer)
		if !ok {
			return fmt.Errorf("dispatchermanager: the dispatcher kind cannot prepare")
		}
		table, ok := m.tables.Lookup(cfg.Span.TableId)
		if !ok {
			return fmt.Errorf("dispatchermanager: table %d left the changefeed", cfg.Span.TableId)
		}
		if cfg.StartTs == 0 {
			cfg.StartTs = max(m.checkpoint, m.changefeed.StartTs)
		}
		p, err := pr.Prepare(cfg, table)
		if err != nil {
			return fmt.Errorf("dispatchermanager: prepare %s: %w", dispatcher.FormatID(cfg.Id), err)
		}
		j.warming, j.warmingCfg = p, cfg
	}
	if !dispatcher.IsWarm(j.warming) {
		return errWarming
	}
	m.table.putPrepared(j)
	return nil
}

// putPrepared moves the entry's prepared dispatcher into the table, state Prepared.
func (t *dispatcherTable) putPrepared(j *journalEntry) {
	p, cfg := j.warming, j.warmingCfg
	j.warming = nil
	t.put(&dispatcherEntry{
		d: &preparedDispatcher{p: p, cfg: cfg}, id: cfg.Id, span: cfg.Span, mode: cfg.Mode,
		state: heartbeatpb.StatePrepared, checkpoint: cfg.StartTs, durable: cfg.StartTs,
	})
	t.log.Debug("dispatcher prepared", zapID(cfg.Id), zap.Stringer("span", span.KeyOf(cfg.Span)),
		zap.Uint64("start-ts", cfg.StartTs), zapOp(j.req.Operator.Id))
}

// settleWarming decides the fate of a prepared dispatcher still warming on j before req takes
// j's place: the commit (a new maintainer may commit one it never heard was prepared) takes it
// as it is; anything else abandons it, leaving nothing behind.
func (t *dispatcherTable) settleWarming(j *journalEntry, req *heartbeatpb.ScheduleDispatcherRequest) {
	if j.warming == nil {
		return
	}
	if req.Action == heartbeatpb.ActionCreate {
		t.putPrepared(j)
		return
	}
	closeWarming(j, t.log, "taken back while warming up")
}

// closeWarming abandons the prepared dispatcher still warming on j, if any.
func closeWarming(j *journalEntry, log *zap.Logger, why string) {
	if j.warming == nil {
		return
	}
	if err := j.warming.Close(); err != nil {
		log.Warn("closing a prepared dispatcher failed", zapID(j.warmingCfg.Id), zap.Error(err))
	}
	j.warming = nil
	log.Debug("prepared dispatcher abandoned", zapID(j.warmingCfg.Id), zap.String("why", why))
}

// commitPrepared makes the prepared dispatcher e working from cfg.StartTs, the origin's final
// checkpoint.
func (t *dispatcherTable) commitPrepared(e *dispatcherEntry, cfg heartbeatpb.DispatcherConfig) error {
	if other := t.working.overlapping(cfg.Mode, cfg.Span); other != nil {
		return fmt.Errorf("dispatchermanager: span %s overlaps working dispatcher %s",
			span.String(cfg.Span), dispatcher.FormatID(other.id))
	}
	pd := e.d.(*preparedDispatcher)
	d, err := pd.p.Commit(cfg.StartTs)
	if err != nil {
		return fmt.Errorf("dispatchermanager: commit %s: %w", dispatcher.FormatID(cfg.Id), err)
	}
	pd.done = true
	e.d, e.checkpoint, e.durable = d, cfg.StartTs, cfg.StartTs
	t.setState(e, heartbeatpb.StateWorking)
	t.markDirty(e)
	t.working.insert(e)
	t.log.Debug("prepared dispatcher committed", zapID(cfg.Id), zap.Uint64("start-ts", cfg.StartTs))
	return nil
}

// abandonPrepared closes a prepared dispatcher and reports it Removed once.
func (t *dispatcherTable) abandonPrepared(e *dispatcherEntry, why string) {
	t.log.Debug("prepared dispatcher abandoned", zapID(e.id), zap.String("why", why))
	t.dropDispatcher(e)
}

// abandonUncommitted abandons the dispatcher a Prepare entry holds, when it is still prepared.
func (t *dispatcherTable) abandonUncommitted(j *journalEntry, why string) {
	if j.req.Action != heartbeatpb.ActionPrepare {
		return
	}
	closeWarming(j, t.log, why)
	if e, ok := t.dispatchers[j.req.Config.Id]; ok && e.state == heartbeatpb.StatePrepared {
		t.abandonPrepared(e, why)
	}
}

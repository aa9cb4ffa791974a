package dispatchermanager

import (
	"sort"
	"time"

	"github.com/pingcap/failpoint"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// onBootstrap stores the changefeed config and answers with everything this node holds.
func (m *Manager) onBootstrap(from string, req *heartbeatpb.MaintainerBootstrapRequest) {
	cfg := req.Config
	m.changefeed = &cfg
	m.tables = make(map[int64]heartbeatpb.TableConfig, len(cfg.Tables))
	for _, t := range cfg.Tables {
		m.tables[t.TableId] = t
	}
	resp := &heartbeatpb.MaintainerBootstrapResponse{
		Dispatchers:    m.allStatuses(),
		Operators:      m.inFlightOperators(),
		MergeOperators: m.inFlightMerges(),
		CheckpointTs:   m.checkpoint,
	}
	m.log.Info("answering bootstrap", zap.String("maintainer", from), zap.Uint64("epoch", m.epoch),
		zap.Int("dispatchers", len(resp.Dispatchers)), zap.Int("operators", len(resp.Operators)),
		zap.Int("merges", len(resp.MergeOperators)))
	m.send(&heartbeatpb.Envelope{To: from, Body: &heartbeatpb.Envelope_BootstrapResponse{BootstrapResponse: resp}})
}

// onHeartbeatResponse takes the persisted checkpoint and drops what the maintainer has seen
// through: journal entries, merge entries and removal records of the finished operators.
func (m *Manager) onHeartbeatResponse(resp *heartbeatpb.HeartBeatResponse) {
	if resp.CheckpointTs > m.checkpoint {
		m.checkpoint = resp.CheckpointTs
	}
	if len(resp.Finished) == 0 {
		return
	}
	finished := make(map[heartbeatpb.OperatorID]bool, len(resp.Finished))
	for _, op := range resp.Finished {
		finished[op] = true
	}
	failpoint.Inject("dm-before-journal-update", func() {})
	for _, journal := range []map[span.Key]*journalEntry{m.current, m.redo} {
		for key, j := range journal {
			if finished[j.req.Operator.Id] {
				delete(journal, key)
				m.log.Debug("journal entry acknowledged", zapOp(j.req.Operator.Id), zapID(j.req.Config.Id),
					zap.Stringer("span", key), zap.Stringer("stage", j.stage))
			}
		}
	}
	for id, e := range m.merges {
		if finished[e.req.Operator.Id] {
			delete(m.merges, id)
			for _, src := range e.req.SourceIds {
				delete(m.inMerge, src)
			}
			delete(m.inMerge, id)
			m.log.Info("merge entry acknowledged", zapOp(e.req.Operator.Id), zapID(id), zap.Stringer("stage", e.stage))
		}
	}
	failpoint.Inject("dm-after-journal-update", func() {})
	for _, op := range resp.Finished {
		for _, id := range m.records[op] {
			m.dropRecord(op, id)
		}
	}
}

// dropRecord closes the removal record id of op, if it is still there.
func (m *Manager) dropRecord(op heartbeatpb.OperatorID, id heartbeatpb.DispatcherID) {
	ids := m.records[op]
	for i, rid := range ids {
		if rid == id {
			ids = append(ids[:i], ids[i+1:]...)
			break
		}
	}
	if len(ids) == 0 {
		delete(m.records, op)
	} else {
		m.records[op] = ids
	}
	if e, ok := m.dispatchers[id]; ok && e.state == heartbeatpb.StateStopped && e.stoppedBy == op {
		m.dropDispatcher(e)
		m.log.Debug("removal record closed", zapID(id), zapOp(op), zap.Uint64("final-ts", e.checkpoint))
	}
}

// heartbeat polls the working dispatchers, flushes the sink when a checkpoint moved (or to
// retry a failing one), and queues one heartbeat to the maintainer with what changed, or with
// everything when a full report is due. A failed flush no longer holds the heartbeat back: the
// statuses go out with their durable checkpoints and the sink's error, so the maintainer knows.
func (m *Manager) heartbeat(now time.Time) {
	var changed, above []*dispatcherEntry // above: checkpoint past what the sink made durable
	for _, e := range m.dispatchers {
		if e.state == heartbeatpb.StateWorking {
			cp, load := e.d.Poll(now)
			e.pollErr()
			if cp < e.checkpoint {
				m.log.Warn("dispatcher checkpoint went back; keeping the higher", zapID(e.id),
					zap.Uint64("polled", cp), zap.Uint64("kept", e.checkpoint))
				cp = e.checkpoint
			}
			if load != e.load {
				e.load, e.dirty = load, true
			}
			e.checkpoint = cp
		}
		if e.dirty {
			changed = append(changed, e)
		} else if e.checkpoint > e.durable {
			above = append(above, e)
		}
	}
	if m.epoch == 0 || m.maintainer == "" {
		return // nobody to tell yet; the dirty marks and checkpoints wait
	}
	full := m.lastFull.IsZero() || now.Sub(m.lastFull) >= m.cfg.HeartbeatInterval
	if len(changed) > 0 || len(above) > 0 || full || len(m.removed) > 0 || m.sink.failing {
		ok, turned := m.flushSink(now)
		if ok {
			for _, e := range changed {
				e.durable = e.checkpoint
			}
			for _, e := range above {
				e.durable = e.checkpoint
			}
			changed = append(changed, above...)
		}
		// The sink's health changed: every working status changes its error, so report all.
		full = full || turned
	}
	if !full && len(changed) == 0 && len(m.removed) == 0 && len(m.rejections) == 0 {
		return
	}
	req := &heartbeatpb.HeartBeatRequest{Full: full, Rejections: m.rejections}
	if full {
		req.Statuses = m.allStatuses()
		req.Journal = m.journalOperators()
	} else {
		sort.Slice(changed, func(i, j int) bool { return lessID(changed[i].id, changed[j].id) })
		req.Statuses = make([]heartbeatpb.DispatcherStatus, 0, len(changed)+len(m.removed))
		for _, e := range changed {
			req.Statuses = append(req.Statuses, e.status(m.sink.cause))
		}
	}
	req.Statuses = append(req.Statuses, m.removed...)
	for _, e := range changed {
		e.dirty = false
	}
	if full {
		m.lastFull = now
	}
	m.removed, m.rejections = nil, nil
	m.send(&heartbeatpb.Envelope{To: m.maintainer, Body: &heartbeatpb.Envelope_Heartbeat{Heartbeat: req}})
}

// allStatuses returns every dispatcher's status in ID order.
func (m *Manager) allStatuses() []heartbeatpb.DispatcherStatus {
	out := make([]heartbeatpb.DispatcherStatus, 0, len(m.dispatchers))
	for _, id := range m.orderedIDs() {
		out = append(out, m.dispatchers[id].status(m.sink.cause))
	}
	return out
}

// inFlightOperators returns the current map, then the redo map, each in span order.
func (m *Manager) inFlightOperators() []heartbeatpb.InFlightOperator {
	out := make([]heartbeatpb.InFlightOperator, 0, len(m.current)+len(m.redo))
	for _, journal := range []map[span.Key]*journalEntry{m.current, m.redo} {
		for _, key := range sortedKeys(journal) {
			out = append(out, journal[key].inFlight())
		}
	}
	return out
}

// inFlightMerges returns the merge map in merged-ID order.
func (m *Manager) inFlightMerges() []heartbeatpb.InFlightMerge {
	out := make([]heartbeatpb.InFlightMerge, 0, len(m.merges))
	for _, id := range sortedIDs(m.merges) {
		out = append(out, m.merges[id].inFlight())
	}
	return out
}

// journalOperators returns the distinct operator IDs of all three maps, in order.
func (m *Manager) journalOperators() []heartbeatpb.OperatorID {
	seen := map[heartbeatpb.OperatorID]bool{}
	var out []heartbeatpb.OperatorID
	add := func(op heartbeatpb.OperatorID) {
		if !seen[op] {
			seen[op] = true
			out = append(out, op)
		}
	}
	for _, j := range m.current {
		add(j.req.Operator.Id)
	}
	for _, j := range m.redo {
		add(j.req.Operator.Id)
	}
	for _, e := range m.merges {
		add(e.req.Operator.Id)
	}
	sort.Slice(out, func(i, j int) bool { return lessOp(out[i], out[j]) })
	return out
}

func sortedKeys(journal map[span.Key]*journalEntry) []span.Key {
	keys := make([]span.Key, 0, len(journal))
	for k := range journal {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return span.Compare(keys[i].Span(), keys[j].Span()) < 0 })
	return keys
}

package dispatchermanager

import (
	"math"
	"slices"
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
	m.tables = tablesOf(&cfg)
	cfg.Tables, cfg.Catalogue = nil, nil // kept once, in m.tables
	m.changefeed = &cfg
	resp := &heartbeatpb.MaintainerBootstrapResponse{
		Dispatchers:    m.table.allStatuses(m.sink.cause),
		Operators:      m.journal.inFlightOperators(),
		MergeOperators: m.journal.inFlightMerges(),
		CheckpointTs:   m.checkpoint,
		RequestId:      req.RequestId,
	}
	// In pieces of at most ChunkBytes, back to back: their seqs are consecutive, as the Chunk
	// rule wants (seq - index names the answer). A request without an ID comes from a
	// maintainer that predates pieces: it gets whole answers and listings, as it always did.
	m.chunkBudget = math.MaxInt
	if req.RequestId != 0 {
		m.chunkBudget = m.cfg.ChunkBytes
	}
	pieces := chunkBootstrap(resp, m.chunkBudget)
	for _, p := range pieces {
		m.out.send(&m.cfg, m.gate.epoch, &heartbeatpb.Envelope{To: from, Body: &heartbeatpb.Envelope_BootstrapResponse{BootstrapResponse: p}})
	}
	m.log.Info("answering bootstrap", zap.String("maintainer", from), zap.Uint64("epoch", m.gate.epoch),
		zap.Int("dispatchers", len(resp.Dispatchers)), zap.Int("operators", len(resp.Operators)),
		zap.Int("merges", len(resp.MergeOperators)), zap.Uint64("request", req.RequestId), zap.Int("chunks", len(pieces)))
}

// onHeartbeatResponse takes the persisted checkpoint and drops what the maintainer has seen
// through: journal entries, merge entries and removal records of the finished operators.
func (m *Manager) onHeartbeatResponse(resp *heartbeatpb.HeartBeatResponse) {
	if resp.CheckpointTs > m.checkpoint {
		m.checkpoint = resp.CheckpointTs
	}
	if resp.SendListing {
		m.listingDue = true
	}
	if len(resp.Finished) == 0 {
		return
	}
	finished := make(map[heartbeatpb.OperatorID]bool, len(resp.Finished))
	for _, op := range resp.Finished {
		finished[op] = true
	}
	failpoint.Inject("dm-before-journal-update", func() {})
	for _, journal := range []map[span.Key]*journalEntry{m.journal.current, m.journal.redo} {
		for key, j := range journal {
			if finished[j.req.Operator.Id] {
				m.table.abandonUncommitted(j, "its operator ended uncommitted")
				delete(journal, key)
				m.log.Debug("journal entry acknowledged", zapOp(j.req.Operator.Id), zapID(j.req.Config.Id),
					zap.Stringer("span", key), zap.Stringer("stage", j.stage))
			}
		}
	}
	for id, e := range m.journal.merges {
		if finished[e.req.Operator.Id] {
			delete(m.journal.merges, id)
			for _, src := range e.req.SourceIds {
				delete(m.journal.inMerge, src)
			}
			delete(m.journal.inMerge, id)
			m.log.Info("merge entry acknowledged", zapOp(e.req.Operator.Id), zapID(id), zap.Stringer("stage", e.stage))
		}
	}
	failpoint.Inject("dm-after-journal-update", func() {})
	for _, op := range resp.Finished {
		for _, id := range m.table.records[op] {
			m.table.dropRecord(op, id)
		}
	}
}

// dropRecord closes the removal record id of op, if it is still there.
func (t *dispatcherTable) dropRecord(op heartbeatpb.OperatorID, id heartbeatpb.DispatcherID) {
	ids := t.records[op]
	for i, rid := range ids {
		if rid == id {
			ids = append(ids[:i], ids[i+1:]...)
			break
		}
	}
	if len(ids) == 0 {
		delete(t.records, op)
	} else {
		t.records[op] = ids
	}
	if e, ok := t.dispatchers[id]; ok && t.stoppedByOp(e, op) {
		t.dropDispatcher(e)
		t.log.Debug("removal record closed", zapID(id), zapOp(op), zap.Uint64("final-ts", e.checkpoint))
	}
}

// heartbeat polls the working dispatchers, flushes the sink when a checkpoint moved (or to
// retry a failing one), and queues one heartbeat to the maintainer when there is news: statuses
// of dispatchers whose state changed (created, stopped, removed, error set or cleared, load
// changed while split or merge is on, load of a split or merge candidate), moved watermarks, rejections, and the periodic report
// every HeartbeatInterval. Every heartbeat carries the watermarks and the digest of the set as
// of its sending, so a moving checkpoint costs a few bytes per node, not a status per span. The
// full listing goes out only when the maintainer asked for it (its view did not match the
// digest) or the sink's health turned (every working status changed its error). A failed flush
// no longer holds the heartbeat back: statuses and watermarks carry durable checkpoints and the
// sink's error, so the maintainer knows.
//
// mayPoll false (Report) leaves the poll to the next Tick.
func (m *Manager) heartbeat(now time.Time, mayPoll bool) {
	spacing := m.cfg.PollInterval + time.Duration(len(m.table.dispatchers))*m.cfg.PollPerDispatcher
	poll := mayPoll && (spacing == 0 || m.lastPoll.IsZero() || now.Sub(m.lastPoll) >= spacing)
	above := false // some checkpoint is past what the sink made durable
	if poll {
		m.lastPoll = now
		var split, merge uint64 // the thresholds; 0 is off
		if m.changefeed != nil {
			split, merge = m.changefeed.SplitLoadThreshold, m.changefeed.MergeLoadThreshold
		}
		above = m.table.pollAll(now, split, merge)
	}
	// Between polls no checkpoint moved, so the marked entries are all the news there is.
	var changed []*dispatcherEntry
	for _, e := range m.table.dirty {
		if e.dirty && m.table.dispatchers[e.id] == e {
			changed = append(changed, e)
		}
	}
	if m.gate.epoch == 0 || m.gate.maintainer == "" {
		return // nobody to tell yet; the dirty marks and checkpoints wait
	}
	periodic := m.lastReport.IsZero() || now.Sub(m.lastReport) >= m.cfg.HeartbeatInterval
	full := m.listingDue
	flushedPoll := false // the sink made every polled checkpoint durable
	if len(changed) > 0 || above || periodic || full || len(m.table.removed) > 0 || m.sink.failing {
		ok, turned := m.sink.flush(m.cfg.Factory, now, m.log)
		if ok && poll {
			flushedPoll = true // exactWatermarks catches every dispatcher up on its pass
		} else if ok {
			// Only the reported ones need it: the others' checkpoints did not move since the
			// last poll, and the next poll flushes and catches them up.
			for _, e := range changed {
				e.durable = e.checkpoint
			}
		}
		full = full || turned
	}
	if poll {
		m.table.exactWatermarks(flushedPoll)
	}
	marks := m.table.watermarks()
	if !full && !periodic && len(changed) == 0 && len(m.table.removed) == 0 && len(m.rejections) == 0 &&
		slices.Equal(marks, m.sentMarks) {
		return
	}
	req := &heartbeatpb.HeartBeatRequest{
		Full: full, Periodic: periodic, Rejections: m.rejections, Watermarks: marks,
		Digest: &heartbeatpb.SetDigest{Count: uint64(len(m.table.dispatchers)), Hash: m.table.hash},
	}
	if full || periodic {
		req.Journal = m.journal.journalOperators()
	}
	if full {
		req.Statuses = m.table.allStatuses(m.sink.cause)
	} else {
		sort.Slice(changed, func(i, j int) bool { return changed[i].id.Less(changed[j].id) })
		req.Statuses = make([]heartbeatpb.DispatcherStatus, 0, len(changed)+len(m.table.removed))
		for _, e := range changed {
			req.Statuses = append(req.Statuses, m.table.status(e, m.sink.cause))
		}
	}
	req.Statuses = append(req.Statuses, m.table.removed...)
	for _, e := range m.table.dirty {
		e.dirty = false
	}
	m.table.dirty = nil
	if periodic {
		m.lastReport = now
	}
	m.sentMarks, m.listingDue = marks, false
	m.table.removed, m.rejections = nil, nil
	for _, p := range chunkHeartbeat(req, m.chunkBudget) { // back to back, as for bootstrap answers
		m.out.send(&m.cfg, m.gate.epoch, &heartbeatpb.Envelope{To: m.gate.maintainer, Body: &heartbeatpb.Envelope_Heartbeat{Heartbeat: p}})
	}
}

// pollAll polls every working dispatcher (checkpoint, load, own error), marks the statuses that
// are news (with split or merge on, by the load thresholds; 0 is off), and says whether some
// checkpoint is past what the sink made durable.
func (t *dispatcherTable) pollAll(now time.Time, split, merge uint64) bool {
	above := false
	for _, e := range t.all {
		if e.state == heartbeatpb.StateWorking {
			cp, load := e.d.Poll(now)
			if t.pollErr(e) {
				t.markDirty(e)
			}
			if cp < e.checkpoint {
				t.log.Warn("dispatcher checkpoint went back; keeping the higher", zapID(e.id),
					zap.Uint64("polled", cp), zap.Uint64("kept", e.checkpoint))
				cp = e.checkpoint
			}
			// Load only drives split and merge: with them on, a change is news (it may start or
			// end a streak) and a candidate past a threshold reports every poll, as the
			// maintainer counts consecutive reports; otherwise it rides along with other news.
			candidate := (split > 0 && load > split) || (merge > 0 && load < merge)
			if (split > 0 || merge > 0) && (load != e.load || candidate) {
				t.markDirty(e)
			}
			e.load = load
			e.checkpoint = cp
		}
		above = above || e.checkpoint > e.durable
	}
	return above
}

// exactWatermarks recomputes the watermark bounds: the least durable checkpoint of the working
// dispatchers, per mode. flushed: the sink has just made every checkpoint durable, which the
// same pass records (at a million dispatchers a separate pass cost as much as this one).
func (t *dispatcherTable) exactWatermarks(flushed bool) {
	t.lo, t.seen = [2]uint64{}, [2]bool{}
	for _, e := range t.all {
		if flushed {
			e.durable = e.checkpoint
		}
		t.noteWorking(e)
	}
}

// watermarks returns the watermark bounds in mode order, for the modes with working
// dispatchers (as of the last poll, or since).
func (t *dispatcherTable) watermarks() []heartbeatpb.Watermark {
	var marks []heartbeatpb.Watermark
	for mode := range t.lo {
		if t.seen[mode] {
			marks = append(marks, heartbeatpb.Watermark{Mode: heartbeatpb.Mode(mode), CheckpointTs: t.lo[mode]})
		}
	}
	return marks
}

// allStatuses returns every dispatcher's status in ID order; sinkErr as for status.
func (t *dispatcherTable) allStatuses(sinkErr string) []heartbeatpb.DispatcherStatus {
	out := make([]heartbeatpb.DispatcherStatus, 0, len(t.dispatchers))
	for _, id := range t.orderedIDs() {
		out = append(out, t.status(t.dispatchers[id], sinkErr))
	}
	return out
}

package dispatchermanager

import (
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
)

// dispatcherEntry is one dispatcher as the manager tracks it: working, or stopped and kept as a
// removal record until the operator that stopped it is acknowledged. It is 128 B: what only a
// few dispatchers carry at a time (an error of their own, the operator that stopped them) lives
// in the table's side maps, not in a field of every entry, which at a million dispatchers was
// 48 MB of a worker.
type dispatcherEntry struct {
	d          dispatcher.Dispatcher
	id         heartbeatpb.DispatcherID
	span       heartbeatpb.TableSpan
	checkpoint uint64
	// durable: the checkpoint as of the last successful sink flush, the only one ever
	// reported (a reported checkpoint must survive a crash of this node).
	durable uint64
	load    uint64
	mode    heartbeatpb.Mode
	state   heartbeatpb.ComponentState
	// pos: the entry's index in the table's all (int32: a node holds far fewer than 2^31).
	pos int32
	// dirty: the status changed since the last heartbeat carried it.
	dirty bool
}

// dispatcherTable is every dispatcher of this node, working or kept as a removal record until
// its operator is acknowledged, with the index that finds overlaps among the working ones.
type dispatcherTable struct {
	log         *zap.Logger
	dispatchers map[heartbeatpb.DispatcherID]*dispatcherEntry
	// all holds the same entries, unordered, for the passes over every dispatcher a poll makes:
	// a slice walk, where iterating the map cost a fifth of a poll at a third of a million.
	all     []*dispatcherEntry
	working workingIndex
	order   []heartbeatpb.DispatcherID // dispatcher IDs sorted; nil when stale
	// records: removal records by the operator that stopped them, so an acknowledgement finds
	// them without a scan over every dispatcher.
	records map[heartbeatpb.OperatorID][]heartbeatpb.DispatcherID
	removed []heartbeatpb.DispatcherStatus // Removed statuses still to report once
	// hash is the XOR of DigestEntry over every dispatcher, kept as they come, go and change
	// state, so a heartbeat's digest costs nothing per dispatcher.
	hash uint64
	// dirty lists the entries marked dirty since the last heartbeat that carried them (it may
	// hold entries dropped meanwhile), so a heartbeat between polls finds them without a scan.
	dirty []*dispatcherEntry
	// lo and seen: per mode, a lower bound of the durable checkpoints of the working
	// dispatchers (exact after each poll; a dispatcher that starts working lowers it at once,
	// and checkpoints only rise meanwhile), which is what a watermark must be.
	lo   [2]uint64
	seen [2]bool
	// errs: each working dispatcher's own error (dispatcher.ErrorReporter) at the last poll;
	// absent when it has none, which is nearly always. stoppedBy: the operator whose
	// acknowledgement closes each removal record. Both are nil until first written.
	errs      map[heartbeatpb.DispatcherID]string
	stoppedBy map[heartbeatpb.DispatcherID]heartbeatpb.OperatorID
}

// pollErr reads e's own error and says whether it changed (the status is news).
func (t *dispatcherTable) pollErr(e *dispatcherEntry) bool {
	r, ok := e.d.(dispatcher.ErrorReporter)
	if !ok {
		return false
	}
	msg := ""
	if err := r.Err(); err != nil {
		msg = err.Error()
	}
	if msg == t.errs[e.id] {
		return false
	}
	if msg == "" {
		delete(t.errs, e.id)
	} else {
		if t.errs == nil {
			t.errs = map[heartbeatpb.DispatcherID]string{}
		}
		t.errs[e.id] = msg
	}
	return true
}

// status is what the node reports of e; sinkErr is the failing sink's cause, "" when healthy,
// and only a working dispatcher carries it (a stopped one has nothing left to write).
func (t *dispatcherTable) status(e *dispatcherEntry, sinkErr string) heartbeatpb.DispatcherStatus {
	st := heartbeatpb.DispatcherStatus{
		Id: e.id, Span: e.span, Mode: e.mode, State: e.state, CheckpointTs: e.durable, Load: e.load,
	}
	if e.state == heartbeatpb.StateWorking {
		own := t.errs[e.id]
		st.Error = sinkErr
		if own != "" && sinkErr != "" {
			st.Error = own + "; sink: " + sinkErr
		} else if own != "" {
			st.Error = own
		}
	}
	return st
}

// stoppedByOp says whether e is a removal record that op's acknowledgement closes.
func (t *dispatcherTable) stoppedByOp(e *dispatcherEntry, op heartbeatpb.OperatorID) bool {
	by, ok := t.stoppedBy[e.id]
	return ok && e.state == heartbeatpb.StateStopped && by == op
}

// forgetSide drops what the side maps hold for id: its entry is gone or replaced.
func (t *dispatcherTable) forgetSide(id heartbeatpb.DispatcherID) {
	delete(t.errs, id)
	delete(t.stoppedBy, id)
}

// markDirty marks e's status as news for the next heartbeat.
func (t *dispatcherTable) markDirty(e *dispatcherEntry) {
	if !e.dirty {
		e.dirty = true
		t.dirty = append(t.dirty, e)
	}
}

// put adds a new entry (its status is news).
func (t *dispatcherTable) put(e *dispatcherEntry) {
	if old := t.dispatchers[e.id]; old != nil {
		e.pos, t.all[old.pos] = old.pos, e // a replacement takes the old entry's place
		t.hash ^= heartbeatpb.DigestEntry(old.id, old.state)
		t.forgetSide(e.id) // the old dispatcher's error and stop are not the new one's
	} else {
		e.pos = int32(len(t.all))
		t.all = append(t.all, e)
	}
	t.dispatchers[e.id] = e
	t.order = nil
	t.hash ^= heartbeatpb.DigestEntry(e.id, e.state)
	t.markDirty(e)
	t.noteWorking(e)
}

// setState changes e's state, keeping the digest.
func (t *dispatcherTable) setState(e *dispatcherEntry, s heartbeatpb.ComponentState) {
	t.hash ^= heartbeatpb.DigestEntry(e.id, e.state) ^ heartbeatpb.DigestEntry(e.id, s)
	e.state = s
	t.noteWorking(e)
}

// noteWorking lowers the watermark bound of e's mode to e's durable checkpoint if e works.
func (t *dispatcherTable) noteWorking(e *dispatcherEntry) {
	if e.state != heartbeatpb.StateWorking || int(e.mode) >= len(t.lo) {
		return
	}
	if !t.seen[e.mode] || e.durable < t.lo[e.mode] {
		t.lo[e.mode], t.seen[e.mode] = e.durable, true
	}
}

// sortedIDs returns the keys of m in (hi, lo) order, so every output is deterministic.
func sortedIDs[V any](m map[heartbeatpb.DispatcherID]V) []heartbeatpb.DispatcherID {
	ids := make([]heartbeatpb.DispatcherID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Less(ids[j]) })
	return ids
}

// orderedIDs returns every dispatcher ID in (hi, lo) order. The order is cached until a
// dispatcher comes or goes, so a full report of a million dispatchers does not sort each time.
func (t *dispatcherTable) orderedIDs() []heartbeatpb.DispatcherID {
	if t.order == nil || len(t.order) != len(t.dispatchers) {
		t.order = sortedIDs(t.dispatchers)
	}
	return t.order
}

// addWorking registers a freshly created dispatcher.
func (t *dispatcherTable) addWorking(d dispatcher.Dispatcher, cfg heartbeatpb.DispatcherConfig) *dispatcherEntry {
	e := &dispatcherEntry{
		d: d, id: cfg.Id, span: cfg.Span, mode: cfg.Mode,
		state: heartbeatpb.StateWorking, checkpoint: cfg.StartTs, durable: cfg.StartTs,
	}
	t.put(e)
	t.working.insert(e)
	return e
}

// stopDispatcher stops a working dispatcher and keeps it as a removal record of op.
func (t *dispatcherTable) stopDispatcher(e *dispatcherEntry, op heartbeatpb.OperatorID, now time.Time) error {
	final, err := e.d.Stop(now)
	if err != nil {
		return fmt.Errorf("dispatchermanager: stop %s: %w", dispatcher.FormatID(e.id), err)
	}
	t.working.remove(e)
	t.setState(e, heartbeatpb.StateStopped)
	e.checkpoint = final
	e.load = 0
	if t.stoppedBy == nil {
		t.stoppedBy = map[heartbeatpb.DispatcherID]heartbeatpb.OperatorID{}
	}
	t.stoppedBy[e.id] = op
	t.markDirty(e)
	t.records[op] = append(t.records[op], e.id)
	return nil
}

// dropDispatcher closes a stopped dispatcher, forgets it and reports it once as Removed.
func (t *dispatcherTable) dropDispatcher(e *dispatcherEntry) {
	if err := e.d.Close(); err != nil {
		t.log.Warn("closing dispatcher failed", zapID(e.id), zap.Error(err))
	}
	if t.dispatchers[e.id] == e {
		delete(t.dispatchers, e.id)
		last := len(t.all) - 1
		t.all[e.pos], t.all[last].pos = t.all[last], e.pos
		t.all[last] = nil
		t.all = t.all[:last]
		t.forgetSide(e.id)
	}
	t.hash ^= heartbeatpb.DigestEntry(e.id, e.state)
	t.order = nil
	st := t.status(e, "")
	st.State = heartbeatpb.StateRemoved
	t.removed = append(t.removed, st)
}

func zapID(id heartbeatpb.DispatcherID) zap.Field {
	return zap.String("dispatcher", dispatcher.FormatID(id))
}

func zapOp(id heartbeatpb.OperatorID) zap.Field {
	return zap.String("operator", fmt.Sprintf("%d.%d", id.Epoch, id.Seq))
}

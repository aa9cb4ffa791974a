package dispatchermanager

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
)

// dispatcherEntry is one dispatcher as the manager tracks it: working, or stopped and kept as a
// removal record until the operator that stopped it is acknowledged.
type dispatcherEntry struct {
	d          dispatcher.Dispatcher
	id         heartbeatpb.DispatcherID
	span       heartbeatpb.TableSpan
	mode       heartbeatpb.Mode
	state      heartbeatpb.ComponentState
	checkpoint uint64
	// durable: the checkpoint as of the last successful sink flush, the only one ever
	// reported (a reported checkpoint must survive a crash of this node).
	durable uint64
	load    uint64
	// stoppedBy: the operator whose acknowledgement closes this removal record.
	stoppedBy heartbeatpb.OperatorID
	// dirty: the status changed since the last heartbeat carried it.
	dirty bool
	// err: the dispatcher's own error (dispatcher.ErrorReporter) at the last poll, "" if none.
	err string
}

// pollErr reads the dispatcher's own error, marking the status dirty when it changed.
func (e *dispatcherEntry) pollErr() {
	r, ok := e.d.(dispatcher.ErrorReporter)
	if !ok {
		return
	}
	msg := ""
	if err := r.Err(); err != nil {
		msg = err.Error()
	}
	if msg != e.err {
		e.err, e.dirty = msg, true
	}
}

// status is what the node reports of e; sinkErr is the failing sink's cause, "" when healthy,
// and only a working dispatcher carries it (a stopped one has nothing left to write).
func (e *dispatcherEntry) status(sinkErr string) heartbeatpb.DispatcherStatus {
	st := heartbeatpb.DispatcherStatus{
		Id: e.id, Span: e.span, Mode: e.mode, State: e.state, CheckpointTs: e.durable, Load: e.load,
	}
	if e.state == heartbeatpb.StateWorking {
		st.Error = sinkErr
		if e.err != "" && sinkErr != "" {
			st.Error = e.err + "; sink: " + sinkErr
		} else if e.err != "" {
			st.Error = e.err
		}
	}
	return st
}

// indexKey groups working dispatchers: spans only conflict within one table and mode.
type indexKey struct {
	mode  heartbeatpb.Mode
	table int64
}

// workingIndex holds the working dispatchers of each table and mode sorted by start key. They
// never overlap (I1), so sorted by start they are sorted by end too and one binary search finds
// any overlap.
type workingIndex map[indexKey][]*dispatcherEntry

// overlapping returns a working dispatcher sharing a key with s in mode, or nil.
func (w workingIndex) overlapping(mode heartbeatpb.Mode, s heartbeatpb.TableSpan) *dispatcherEntry {
	list := w[indexKey{mode, s.TableId}]
	i := sort.Search(len(list), func(i int) bool { return bytes.Compare(list[i].span.EndKey, s.StartKey) > 0 })
	if i < len(list) && bytes.Compare(list[i].span.StartKey, s.EndKey) < 0 {
		return list[i]
	}
	return nil
}

func (w workingIndex) insert(e *dispatcherEntry) {
	if other := w.overlapping(e.mode, e.span); other != nil {
		panic(fmt.Sprintf("dispatchermanager: %s overlaps working %s", dispatcher.FormatID(e.id),
			dispatcher.FormatID(other.id)))
	}
	k := indexKey{e.mode, e.span.TableId}
	list := w[k]
	i := sort.Search(len(list), func(i int) bool { return bytes.Compare(list[i].span.StartKey, e.span.StartKey) > 0 })
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = e
	w[k] = list
}

func (w workingIndex) remove(e *dispatcherEntry) {
	k := indexKey{e.mode, e.span.TableId}
	list := w[k]
	i := sort.Search(len(list), func(i int) bool { return bytes.Compare(list[i].span.StartKey, e.span.StartKey) >= 0 })
	if i >= len(list) || list[i] != e {
		panic(fmt.Sprintf("dispatchermanager: working dispatcher %s missing from index", dispatcher.FormatID(e.id)))
	}
	list = append(list[:i], list[i+1:]...)
	if len(list) == 0 {
		delete(w, k)
		return
	}
	w[k] = list
}

// dispatcherTable is every dispatcher of this node, working or kept as a removal record until
// its operator is acknowledged, with the index that finds overlaps among the working ones.
type dispatcherTable struct {
	log         *zap.Logger
	dispatchers map[heartbeatpb.DispatcherID]*dispatcherEntry
	working     workingIndex
	order       []heartbeatpb.DispatcherID // dispatcher IDs sorted; nil when stale
	// records: removal records by the operator that stopped them, so an acknowledgement finds
	// them without a scan over every dispatcher.
	records map[heartbeatpb.OperatorID][]heartbeatpb.DispatcherID
	removed []heartbeatpb.DispatcherStatus // Removed statuses still to report once
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
		state: heartbeatpb.StateWorking, checkpoint: cfg.StartTs, durable: cfg.StartTs, dirty: true,
	}
	t.dispatchers[cfg.Id] = e
	t.order = nil
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
	e.state = heartbeatpb.StateStopped
	e.checkpoint = final
	e.load = 0
	e.stoppedBy = op
	e.dirty = true
	t.records[op] = append(t.records[op], e.id)
	return nil
}

// dropDispatcher closes a stopped dispatcher, forgets it and reports it once as Removed.
func (t *dispatcherTable) dropDispatcher(e *dispatcherEntry) {
	if err := e.d.Close(); err != nil {
		t.log.Warn("closing dispatcher failed", zapID(e.id), zap.Error(err))
	}
	delete(t.dispatchers, e.id)
	t.order = nil
	st := e.status("")
	st.State = heartbeatpb.StateRemoved
	t.removed = append(t.removed, st)
}

func zapID(id heartbeatpb.DispatcherID) zap.Field {
	return zap.String("dispatcher", dispatcher.FormatID(id))
}

func zapOp(id heartbeatpb.OperatorID) zap.Field {
	return zap.String("operator", fmt.Sprintf("%d.%d", id.Epoch, id.Seq))
}

package operator

import (
	"fmt"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// mergeState is the lifecycle of a Merge.
//
//	   Start (MergeDispatcherRequest to the node)
//	     |
//	     v
//	+----------+ merged reports Working (sources stopped first)  +------+
//	| merging  |------------------------------------------------>| done | bind merged, retire sources
//	+----------+                                                 +------+
//	  |  source reports Stopped/Removed: remember its checkpoint (the node stops them first)
//	  |  node refuses: done, aborted, sources unchanged (nothing was accepted)
//	  |  node lost: done, aborted, sources retired, merged span absent @ least source checkpoint
//	  |  merged reports Stopped/Removed: done, aborted, merged span absent @ its checkpoint
//	  |  table removed: wait until the merged one works (bound, for the maintainer to remove)
//	  |  or every source is seen stopped (a node without the table cannot create the merged
//	  |  one; merged span absent), then done (table removed), sources retired either way
//	  +---------------------------------------------------------------> (table removed)
//
// The node does the work in one request: stop the sources, take the least of their final
// checkpoints, create the merged dispatcher from it, remove the sources. The sources are locked
// by this operator (and on the node by the merge entry) until the node's entry is acknowledged.
type mergeState int

const (
	mergeMerging mergeState = iota
	mergeDone
)

var mergeStateNames = [...]string{"merging", "done"}

func (s mergeState) String() string { return mergeStateNames[s] }

var mergeTransitions = map[mergeState][]mergeState{
	mergeMerging: {mergeDone},
}

// Merge joins adjacent spans of one table, all served on one node, into one span on that node.
type Merge struct {
	desc         heartbeatpb.OperatorDescriptor
	node         string
	merged       heartbeatpb.SpanPlacement
	sourceCps    []uint64 // last checkpoint seen per source
	sourceGone   []bool   // source reported Stopped or Removed
	tableRemoved bool
	state        mergeState
	result       Result
	req          *heartbeatpb.MergeDispatcherRequest
}

// NewMerge returns the Merge d describes: two or more sources, adjacent and in key order, all
// on one node, and one target on that node whose span is their union. checkpoints are the
// sources' last known checkpoints, in source order (nil: all zero). CreatedMs defaults to now.
func NewMerge(d heartbeatpb.OperatorDescriptor, checkpoints []uint64, now time.Time) (*Merge, error) {
	if d.Kind != heartbeatpb.OpMerge {
		return nil, fmt.Errorf("%w: merge: descriptor of kind %v", ErrInvalid, d.Kind)
	}
	if len(d.Sources) < 2 || len(d.Targets) != 1 {
		return nil, fmt.Errorf("%w: merge %d.%d: want two or more sources and one target, got %d and %d",
			ErrInvalid, d.Id.Epoch, d.Id.Seq, len(d.Sources), len(d.Targets))
	}
	if checkpoints != nil && len(checkpoints) != len(d.Sources) {
		return nil, fmt.Errorf("%w: merge %d.%d: %d checkpoints for %d sources",
			ErrInvalid, d.Id.Epoch, d.Id.Seq, len(checkpoints), len(d.Sources))
	}
	if err := validPlacements("merge", d); err != nil {
		return nil, err
	}
	node := d.Targets[0].NodeId
	spans := make([]heartbeatpb.TableSpan, len(d.Sources))
	for i, p := range d.Sources {
		if p.NodeId != node {
			return nil, fmt.Errorf("%w: merge %d.%d: source on %s, merge on %s", ErrInvalid, d.Id.Epoch, d.Id.Seq, p.NodeId, node)
		}
		if i > 0 && !span.Adjacent(spans[i-1], p.Span) {
			return nil, fmt.Errorf("%w: merge %d.%d: sources not adjacent in key order", ErrInvalid, d.Id.Epoch, d.Id.Seq)
		}
		spans[i] = p.Span
	}
	if u, err := span.Merge(spans); err != nil || !span.Equal(u, d.Targets[0].Span) {
		return nil, fmt.Errorf("%w: merge %d.%d: target is not the union of the sources", ErrInvalid, d.Id.Epoch, d.Id.Seq)
	}
	if d.CreatedMs == 0 {
		d.CreatedMs = now.UnixMilli()
	}
	d.StartTs = 0 // the node picks the least source checkpoint
	m := &Merge{desc: cloneDesc(d), node: node, sourceCps: make([]uint64, len(d.Sources)),
		sourceGone: make([]bool, len(d.Sources))}
	m.merged = m.desc.Targets[0]
	copy(m.sourceCps, checkpoints)
	ids := make([]heartbeatpb.DispatcherID, len(d.Sources))
	for i, p := range m.desc.Sources {
		ids[i] = p.DispatcherId
	}
	m.req = &heartbeatpb.MergeDispatcherRequest{SourceIds: ids, MergedId: m.merged.DispatcherId,
		MergedSpan: m.merged.Span, Mode: m.desc.Mode, Operator: m.desc}
	return m, nil
}

func (m *Merge) ID() heartbeatpb.OperatorID                  { return m.desc.Id }
func (m *Merge) Type() heartbeatpb.OperatorType              { return heartbeatpb.OpMerge }
func (m *Merge) Descriptor() *heartbeatpb.OperatorDescriptor { return &m.desc }
func (m *Merge) Phase() string                               { return m.state.String() }

// Spans locks every source and the merged span.
func (m *Merge) Spans() []SpanRef {
	out := make([]SpanRef, 0, len(m.desc.Sources)+1)
	for _, p := range m.desc.Sources {
		out = append(out, RefOf(p.Span, m.desc.Mode))
	}
	return append(out, RefOf(m.merged.Span, m.desc.Mode))
}

// Start sends the merge request to the node.
func (m *Merge) Start(now time.Time) []Outgoing { return m.Resend(now) }

// Resend repeats the merge request while the merged dispatcher has not been seen working; the
// node treats a repeat as a request to report the merge's statuses again.
func (m *Merge) Resend(time.Time) []Outgoing {
	if m.state != mergeMerging {
		return nil
	}
	return []Outgoing{{Node: m.node, Merge: m.req}}
}

// OnStatus remembers the sources' checkpoints and finishes on the merged dispatcher's report.
func (m *Merge) OnStatus(node string, st *heartbeatpb.DispatcherStatus, now time.Time) []Outgoing {
	if m.state != mergeMerging || st == nil || node != m.node {
		return nil
	}
	if st.Id == m.merged.DispatcherId {
		switch {
		case st.State == heartbeatpb.StateWorking:
			m.succeed(st.CheckpointTs)
		case gone(st.State):
			m.finish(Result{Outcome: OutcomeAborted, Retire: m.retired(),
				Absent: []AbsentSpan{{Span: m.merged.Span, Mode: m.desc.Mode, Checkpoint: maxTs(st.CheckpointTs, m.least())}}})
		}
		return nil
	}
	for i, p := range m.desc.Sources {
		if st.Id == p.DispatcherId {
			m.sourceCps[i] = maxTs(m.sourceCps[i], st.CheckpointTs)
			m.sourceGone[i] = m.sourceGone[i] || gone(st.State)
		}
	}
	m.endIfTableGone()
	return nil
}

// endIfTableGone finishes a Merge of a removed table once every source is seen stopped: nothing
// of the table processes data any more, and the node may be unable to create the merged
// dispatcher without the table. Acknowledging the operator clears the node's merge entry.
func (m *Merge) endIfTableGone() {
	if !m.tableRemoved || m.state != mergeMerging {
		return
	}
	for _, g := range m.sourceGone {
		if !g {
			return
		}
	}
	m.finishTableGone()
}

// finishTableGone ends a Merge of a removed table whose sources stopped (or are lost): they are
// retired and the merged span stays, absent, for the maintainer to drop with its table. A merged
// dispatcher the node may still create is then a stranger to remove, alone on its keys.
func (m *Merge) finishTableGone() {
	m.finish(Result{Outcome: OutcomeTableRemoved, Retire: m.retired(),
		Absent: []AbsentSpan{{Span: m.merged.Span, Mode: m.desc.Mode, Checkpoint: m.least()}}})
}

// OnRejected: the node accepted nothing, so the sources serve on as before.
func (m *Merge) OnRejected(node string, rej *heartbeatpb.RequestRejection, now time.Time) []Outgoing {
	if m.state != mergeMerging || rej == nil || node != m.node || rej.OperatorId != m.desc.Id {
		return nil
	}
	if m.tableRemoved {
		m.finish(Result{Outcome: OutcomeTableRemoved})
		return nil
	}
	m.finish(Result{Outcome: OutcomeAborted})
	return nil
}

// OnNodeRemoved: every dispatcher involved lived on the node, so all are gone; the merged span
// resumes from the least source checkpoint, which every source's keys reached.
func (m *Merge) OnNodeRemoved(node string, now time.Time) []Outgoing {
	if m.state != mergeMerging || node != m.node {
		return nil
	}
	if m.tableRemoved {
		m.finishTableGone()
		return nil
	}
	m.finish(Result{Outcome: OutcomeAborted, Retire: m.retired(),
		Absent: []AbsentSpan{{Span: m.merged.Span, Mode: m.desc.Mode, Checkpoint: m.least()}}})
	return nil
}

// OnTableRemoved: a merge in flight cannot be interrupted on the node, so the operator waits for
// its outcome (or for every source to stop) and then ends; the maintainer removes what is left.
func (m *Merge) OnTableRemoved(table int64, now time.Time) []Outgoing {
	if table == m.merged.Span.TableId {
		m.tableRemoved = true
		m.endIfTableGone()
	}
	return nil
}

// succeed binds the merged span in place of the sources. With the table removed, the outcome
// says so, but the binding stays: the maintainer then removes the merged dispatcher through the
// span, the one operator on those keys.
func (m *Merge) succeed(cp uint64) {
	outcome := OutcomeSucceeded
	if m.tableRemoved {
		outcome = OutcomeTableRemoved
	}
	m.finish(Result{Outcome: outcome, Retire: m.retired(), Bind: []Binding{{
		Span: m.merged.Span, Mode: m.desc.Mode, Node: m.node, Dispatcher: m.merged.DispatcherId,
		Checkpoint: maxTs(cp, m.least()),
	}}})
}

func (m *Merge) retired() []RetiredSpan {
	out := make([]RetiredSpan, len(m.desc.Sources))
	for i, p := range m.desc.Sources {
		out[i] = RetiredSpan{Span: p.Span, Mode: m.desc.Mode}
	}
	return out
}

// least returns the lowest source checkpoint known: at or below where every source stopped.
func (m *Merge) least() uint64 {
	lo := m.sourceCps[0]
	for _, c := range m.sourceCps[1:] {
		lo = min(lo, c)
	}
	return lo
}

func (m *Merge) finish(r Result) {
	mustTransition("merge", m.state, mergeDone, mergeTransitions)
	m.state = mergeDone
	m.result = r
}

// Finished returns the result once the Merge is done.
func (m *Merge) Finished() (Result, bool) { return m.result, m.state == mergeDone }

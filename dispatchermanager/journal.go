package dispatchermanager

import (
	"sort"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// journal is what this node remembers of the requests in flight: one entry per span and mode for
// schedule requests (current for ModeDefault, redo for ModeRedo) and one per merged dispatcher
// for merges. It survives a maintainer failover: the bootstrap answer carries it, and the new
// maintainer restores its operators from it.
type journal struct {
	current, redo map[span.Key]*journalEntry
	merges        map[heartbeatpb.DispatcherID]*mergeEntry
	// inMerge: sources and merged dispatcher of every in-flight merge, by merged ID.
	inMerge map[heartbeatpb.DispatcherID]heartbeatpb.DispatcherID
}

// journalOf returns the current map for ModeDefault and the redo map for ModeRedo.
func (j *journal) journalOf(mode heartbeatpb.Mode) map[span.Key]*journalEntry {
	if mode == heartbeatpb.ModeRedo {
		return j.redo
	}
	return j.current
}

// inFlightOperators returns the current map, then the redo map, each in span order.
func (j *journal) inFlightOperators() []heartbeatpb.InFlightOperator {
	out := make([]heartbeatpb.InFlightOperator, 0, len(j.current)+len(j.redo))
	for _, journal := range []map[span.Key]*journalEntry{j.current, j.redo} {
		for _, key := range sortedKeys(journal) {
			out = append(out, journal[key].inFlight())
		}
	}
	return out
}

// inFlightMerges returns the merge map in merged-ID order.
func (j *journal) inFlightMerges() []heartbeatpb.InFlightMerge {
	out := make([]heartbeatpb.InFlightMerge, 0, len(j.merges))
	for _, id := range sortedIDs(j.merges) {
		out = append(out, j.merges[id].inFlight())
	}
	return out
}

// journalOperators returns the distinct operator IDs of all three maps, in order.
func (j *journal) journalOperators() []heartbeatpb.OperatorID {
	seen := map[heartbeatpb.OperatorID]bool{}
	var out []heartbeatpb.OperatorID
	add := func(op heartbeatpb.OperatorID) {
		if !seen[op] {
			seen[op] = true
			out = append(out, op)
		}
	}
	for _, j := range j.current {
		add(j.req.Operator.Id)
	}
	for _, j := range j.redo {
		add(j.req.Operator.Id)
	}
	for _, e := range j.merges {
		add(e.req.Operator.Id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
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

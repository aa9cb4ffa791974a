package dispatchermanager

import "github.com/tidemark/tidemark/heartbeatpb"

// ManagerSnapshot is a copy of a manager's state for the HTTP API and tests.
type ManagerSnapshot struct {
	Node, Changefeed string
	Epoch            uint64
	Maintainer       string
	Bootstrapped     bool   // a changefeed config is known
	CheckpointTs     uint64 // highest changefeed checkpoint seen
	// Dispatchers: working ones and removal records, in ID order (nil in a Brief).
	Dispatchers []heartbeatpb.DispatcherStatus
	// Count: how many dispatchers there are, working ones and removal records.
	Count int
	// Operators: the current map then the redo map, each in span order.
	Operators []heartbeatpb.InFlightOperator
	// Merges: the merge map in merged-ID order.
	Merges []heartbeatpb.InFlightMerge
}

// Snapshot returns a copy of the manager's state.
func (m *Manager) Snapshot() ManagerSnapshot {
	return ManagerSnapshot{
		Node: m.cfg.NodeID, Changefeed: m.cfg.Changefeed,
		Epoch: m.gate.epoch, Maintainer: m.gate.maintainer, Bootstrapped: m.changefeed != nil,
		CheckpointTs: m.checkpoint,
		Dispatchers:  m.table.allStatuses(m.sink.cause),
		Count:        len(m.table.dispatchers),
		Operators:    m.journal.inFlightOperators(),
		Merges:       m.journal.inFlightMerges(),
	}
}

// Brief is m's Snapshot without the per-dispatcher statuses, for views that only count them:
// the full list is a sorted copy of every dispatcher, which a node's status view took every
// second just to print its length.
func Brief(m *Manager) ManagerSnapshot {
	return ManagerSnapshot{
		Node: m.cfg.NodeID, Changefeed: m.cfg.Changefeed,
		Epoch: m.gate.epoch, Maintainer: m.gate.maintainer, Bootstrapped: m.changefeed != nil,
		CheckpointTs: m.checkpoint,
		Count:        len(m.table.dispatchers),
		Operators:    m.journal.inFlightOperators(),
		Merges:       m.journal.inFlightMerges(),
	}
}

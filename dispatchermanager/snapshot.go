package dispatchermanager

import "github.com/tidemark/tidemark/heartbeatpb"

// ManagerSnapshot is a copy of a manager's state for the HTTP API and tests.
type ManagerSnapshot struct {
	Node, Changefeed string
	Epoch            uint64
	Maintainer       string
	Bootstrapped     bool   // a changefeed config is known
	CheckpointTs     uint64 // highest changefeed checkpoint seen
	// Dispatchers: working ones and removal records, in ID order.
	Dispatchers []heartbeatpb.DispatcherStatus
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
		Operators:    m.journal.inFlightOperators(),
		Merges:       m.journal.inFlightMerges(),
	}
}

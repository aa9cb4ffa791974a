package maintainer

import (
	"sort"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// healthState is what the core knows of sick nodes: the nodes marked unhealthy in etcd (their
// own sinks have failed too long) and the dispatchers that report an error. The zero value is
// ready to use.
//
// Unhealthy is kept apart from drained although both keep spans off a node: a drain is an
// operator's request with an answer, unhealthy is the node's own state and ends by itself.
type healthState struct {
	unhealthy map[string]bool
	// errs holds the latest error of each span whose dispatcher reported one. Sparse: a healthy
	// cluster has none. An entry counts only while its dispatcher still serves the span, so a
	// span moved away needs no cleanup before it is looked at.
	errs map[spanID]spanError
}

type spanError struct {
	node       string
	dispatcher heartbeatpb.DispatcherID
	msg        string
}

// NodeErrors is one node's erroring spans in Status: how many, and the message of one of them
// (they share the node's sink, so one message names the cause).
type NodeErrors struct {
	Spans int    `json:"spans"`
	Error string `json:"error"`
}

// SetUnhealthy replaces the set of unhealthy nodes (the runner follows their marks in etcd):
// their spans are moved off, and nothing new is placed on them, until the mark goes.
func (m *Maintainer) SetUnhealthy(nodes []string) {
	m.health.unhealthy = make(map[string]bool, len(nodes))
	for _, n := range nodes {
		m.health.unhealthy[n] = true
	}
}

// Unhealthy returns the unhealthy nodes, sorted.
func (m *Maintainer) Unhealthy() []string { return sortedSet(m.health.unhealthy) }

// avoided reports whether node must get no new spans and lose the ones it has.
func (m *Maintainer) avoided(node string) bool {
	return m.admin.drained[node] || m.health.unhealthy[node]
}

// avoidedNodes returns the drained and unhealthy nodes, sorted.
func (m *Maintainer) avoidedNodes() []string {
	if len(m.health.unhealthy) == 0 {
		return m.Drained()
	}
	all := make(map[string]bool, len(m.admin.drained)+len(m.health.unhealthy))
	for n := range m.admin.drained {
		all[n] = true
	}
	for n := range m.health.unhealthy {
		all[n] = true
	}
	return sortedSet(all)
}

func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// observeError records the error a working dispatcher of span sid reported ("" clears it).
func (m *Maintainer) observeError(sid spanID, node string, st *heartbeatpb.DispatcherStatus) {
	if st.Error == "" {
		delete(m.health.errs, sid)
		return
	}
	if m.health.errs == nil {
		m.health.errs = make(map[spanID]spanError)
	}
	m.health.errs[sid] = spanError{node: node, dispatcher: st.Id, msg: st.Error}
}

// spanErr returns the error of span sid's current dispatcher, or "".
func (m *Maintainer) spanErr(sid spanID) string {
	e, ok := m.health.errs[sid]
	if !ok {
		return ""
	}
	r := m.db.get(sid)
	if r.retired || r.state != stateReplicating || r.node != e.node || r.dispatcher != e.dispatcher {
		delete(m.health.errs, sid) // stale: the span moved on
		return ""
	}
	return e.msg
}

// nodeErrors counts the erroring spans per node.
func (m *Maintainer) nodeErrors() map[string]NodeErrors {
	out := map[string]NodeErrors{}
	for sid := range m.health.errs {
		msg := m.spanErr(sid)
		if msg == "" {
			continue
		}
		node := m.db.get(sid).node
		ne := out[node]
		ne.Spans++
		if ne.Error == "" || msg < ne.Error {
			ne.Error = msg // the least message, so the output is deterministic
		}
		out[node] = ne
	}
	return out
}

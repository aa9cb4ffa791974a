package maintainer

import (
	"sort"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
)

// OperatorStatus is one in-flight operator as the status API shows it.
type OperatorStatus struct {
	ID    heartbeatpb.OperatorID `json:"id"`
	Kind  string                 `json:"kind"`
	Spans []string               `json:"spans"`
	Mode  string                 `json:"mode"`
	Phase string                 `json:"phase"`
	Nodes []string               `json:"nodes"`
	Age   time.Duration          `json:"age_ns"`
}

// Status is a snapshot of the maintainer for the HTTP API and the etcd status record.
type Status struct {
	Changefeed   string `json:"changefeed"`
	Epoch        uint64 `json:"epoch"`
	Bootstrapped bool   `json:"bootstrapped"`
	// Checkpoint is the last persisted changefeed checkpoint; Computed the latest computed one.
	Checkpoint uint64 `json:"checkpoint_ts"`
	Computed   uint64 `json:"computed_checkpoint_ts"`
	// Spans counts spans (all modes) by state: absent, scheduling, replicating.
	Spans map[string]int `json:"spans"`
	// NodeSpans counts spans served or being added per ready node.
	NodeSpans map[string]int `json:"node_spans"`
	// Nodes lists live nodes with their state: bootstrapping, silent or ready.
	Nodes     map[string]string `json:"nodes"`
	Operators []OperatorStatus  `json:"operators"`
	// OperatorsDone counts finished operators by "kind/outcome".
	OperatorsDone map[string]uint64 `json:"operators_done"`
	// OperatorsTimedOut counts operators whose phase timed out and was rolled back, by kind.
	OperatorsTimedOut map[string]uint64 `json:"operators_timed_out,omitempty"`
	// MadeBeforeBreak counts, by kind, the operators counted succeeded in OperatorsDone that
	// committed a target prepared while the source still worked (make-before-break).
	MadeBeforeBreak map[string]uint64 `json:"made_before_break,omitempty"`
	// SpanErrors counts, per node, the spans whose dispatcher reports an error, with a message.
	SpanErrors map[string]NodeErrors `json:"span_errors,omitempty"`
	// Unhealthy lists the nodes marked unhealthy (their spans are moved off).
	Unhealthy []string `json:"unhealthy_nodes,omitempty"`
}

// Bootstrapped reports whether the schedule has been restored.
func (m *Maintainer) Bootstrapped() bool { return m.bootstrapped }

// Settled reports that the maintainer is bootstrapped, some span exists, every span replicates
// and no operator is in flight, from counters alone. The server asks it after every flush until
// it first holds (the end of a failover), so it must not cost the operators in flight: Status
// lists them, and at 10,000 in flight after a failover at 100,000 spans that listing after
// every flush was an eighth of the maintainer node's CPU (tests/bench -scenarios cdcscale).
func (m *Maintainer) Settled() bool {
	if !m.bootstrapped || m.ctl.Len() > 0 || m.db.counts[stateReplicating] == 0 {
		return false
	}
	for s := spanState(0); s < numStates; s++ {
		if s != stateReplicating && m.db.counts[s] > 0 {
			return false
		}
	}
	return true
}

// Status describes the maintainer now (as of the latest input's time).
func (m *Maintainer) Status() Status {
	st := Status{
		Changefeed:        m.cfg.Changefeed,
		Epoch:             m.cfg.Epoch,
		Bootstrapped:      m.bootstrapped,
		Checkpoint:        m.cp.persisted,
		Computed:          m.cp.computed,
		Spans:             make(map[string]int, numStates),
		NodeSpans:         make(map[string]int, len(m.nodes.live)),
		Nodes:             make(map[string]string, len(m.nodes.live)),
		OperatorsDone:     make(map[string]uint64),
		OperatorsTimedOut: make(map[string]uint64),
	}
	if len(m.nodes.unhealthy) > 0 {
		st.Unhealthy = sortedSet(m.nodes.unhealthy)
	}
	if errs := m.errs.perNode(m.db); len(errs) > 0 {
		st.SpanErrors = errs
	}
	for s := spanState(0); s < numStates; s++ {
		st.Spans[s.String()] = m.db.counts[s]
	}
	for id, n := range m.nodes.live {
		switch {
		case n.state == nodeReady:
			st.Nodes[id] = "ready"
			st.NodeSpans[id] = m.db.nodeLoad(id)
		case n.silent:
			st.Nodes[id] = "silent"
		default:
			st.Nodes[id] = "bootstrapping"
		}
	}
	for _, info := range m.ctl.List(m.now) {
		st.Operators = append(st.Operators, operatorStatus(info))
	}
	for k, v := range m.ctl.Counters() {
		st.OperatorsDone[k.Kind.String()+"/"+k.Outcome.String()] = v
	}
	for kind, v := range m.ctl.TimedOut() {
		st.OperatorsTimedOut[kind.String()] = v
	}
	for kind, v := range m.ctl.MadeBeforeBreak() {
		if st.MadeBeforeBreak == nil {
			st.MadeBeforeBreak = make(map[string]uint64)
		}
		st.MadeBeforeBreak[kind.String()] = v
	}
	return st
}

func operatorStatus(info operator.Info) OperatorStatus {
	os := OperatorStatus{ID: info.ID, Kind: info.Kind.String(), Phase: info.Phase, Nodes: info.Nodes, Age: info.Age}
	for _, r := range info.Spans {
		os.Spans = append(os.Spans, r.Span.String())
		os.Mode = r.Mode.String()
	}
	sort.Strings(os.Spans)
	return os
}

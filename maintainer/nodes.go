package maintainer

import (
	"sort"
	"time"
)

// nodeState is how far the maintainer got with one live node.
type nodeState int

const (
	// nodeBootstrapping: a bootstrap request is out; the node gets no work until it answers.
	nodeBootstrapping nodeState = iota
	// nodeReady: it answered; it may receive spans.
	nodeReady
)

type nodeInfo struct {
	state  nodeState
	sentAt time.Time // last bootstrap request
	// backoff: the wait before the next resend of an unanswered bootstrap request; zero is the
	// resend interval. It doubles with each resend (up to maxBootstrapBackoff intervals): the
	// request carries the whole table list, megabytes at a million tables, and a node that is
	// slow to answer (busy, starved of CPU) would otherwise get one more to process every
	// interval, each costing it as much as the first, and fall further behind.
	backoff time.Duration
	// nudged: a heartbeat of this term came after sentAt and the request was sent again at once.
	nudged bool
	// joined: when it was first asked. A node that joins during bootstrap (an evicted node
	// registering again) gets its own BootstrapTimeout, so it is not evicted again at once.
	joined time.Time
	silent bool // missed the initial bootstrap deadline; being evicted until it answers or leaves
	// evictAt: last eviction asked for this silent node (repeated on the resend throttle).
	evictAt time.Time
}

// nodeSet is the live nodes and what keeps spans off them: drained nodes (an operator's
// request, answered once empty) and unhealthy ones (the node's own mark in etcd, which ends by
// itself). Both kinds get no new spans and lose the ones they have. The zero value is not
// ready; use newNodeSet.
type nodeSet struct {
	live      map[string]*nodeInfo
	drained   map[string]bool
	unhealthy map[string]bool
}

func newNodeSet() nodeSet { return nodeSet{live: make(map[string]*nodeInfo)} }

func (ns *nodeSet) get(id string) *nodeInfo { return ns.live[id] }

// ready reports whether node is live and has answered its bootstrap request.
func (ns *nodeSet) ready(id string) bool {
	n := ns.live[id]
	return n != nil && n.state == nodeReady
}

// avoided reports whether node must get no new spans and lose the ones it has.
func (ns *nodeSet) avoided(id string) bool { return ns.drained[id] || ns.unhealthy[id] }

// target reports whether node may receive spans: ready and not avoided.
func (ns *nodeSet) target(id string) bool { return ns.ready(id) && !ns.avoided(id) }

// avoidedNodes returns the drained and unhealthy nodes, sorted.
func (ns *nodeSet) avoidedNodes() []string {
	all := make(map[string]bool, len(ns.drained)+len(ns.unhealthy))
	for n := range ns.drained {
		all[n] = true
	}
	for n := range ns.unhealthy {
		all[n] = true
	}
	return sortedSet(all)
}

// bootstrapping reports whether some live node has not answered yet.
func (ns *nodeSet) bootstrapping() bool {
	for _, n := range ns.live {
		if n.state == nodeBootstrapping {
			return true
		}
	}
	return false
}

// maxBootstrapBackoff bounds the resend backoff of a bootstrap request, in resend intervals.
const maxBootstrapBackoff = 4

// resendDue returns the nodes whose unanswered bootstrap request is due again (every, doubling
// with each resend up to maxBootstrapBackoff times every), marking it sent.
func (ns *nodeSet) resendDue(now time.Time, every time.Duration) []string {
	var out []string
	for id, n := range ns.live {
		wait := max(n.backoff, every)
		if n.state == nodeBootstrapping && now.Sub(n.sentAt) >= wait {
			n.sentAt, n.nudged = now, false
			n.backoff = min(2*wait, maxBootstrapBackoff*every)
			out = append(out, id)
		}
	}
	return out
}

// evictDue marks the nodes still silent timeout after they joined and returns the ones whose
// eviction must be asked now (first time, or again on the resend throttle) and, sorted, those
// that just went silent.
func (ns *nodeSet) evictDue(now time.Time, timeout, every time.Duration) (evict, silent []string) {
	for id, n := range ns.live {
		if n.state != nodeBootstrapping || now.Sub(n.joined) < timeout {
			continue
		}
		if !n.silent {
			n.silent = true
			n.evictAt = now
			evict = append(evict, id)
			silent = append(silent, id)
		} else if now.Sub(n.evictAt) >= every {
			n.evictAt = now
			evict = append(evict, id)
		}
	}
	sort.Strings(silent)
	return evict, silent
}

func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func stringSet(nodes []string) map[string]bool {
	out := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		out[n] = true
	}
	return out
}

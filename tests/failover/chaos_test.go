package failover

import (
	"time"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/failpoints"
)

// chaosAction is one kind of fault random-chaos injects.
type chaosAction int

const (
	chaosKill chaosAction = iota
	chaosRestart
	chaosPause
	chaosTerm
	chaosTransport
	chaosEtcd
	numChaosActions
)

var chaosNames = [...]string{"kill", "restart", "pause", "term", "transport", "etcd"}

// transportFaults are the expressions random-chaos picks from: drops, delays and duplicates.
var transportFaults = []struct{ name, terms string }{
	{failpoints.TransportDrop, "30%return(true)"},
	{failpoints.TransportDelay, "return(80)"},
	{failpoints.TransportDuplicate, "return(true)"},
}

// randomChaos kills, pauses and restarts random nodes, kills etcd members and injects transport
// faults for a bounded time (-failover.duration, default 25 s) while the schedulers work: the
// tables are hot, so they split and their pieces merge back while the faults start, and every
// kill and restart makes the balance scheduler move spans.
func randomChaos(e *env) {
	e.hotTables(4, 15)
	e.startNodes()
	e.createChangefeed()
	e.waitFor(e.cf, 30*time.Second, "bootstrapped", func(st etcdutil.ChangefeedStatus) bool { return st.Bootstrapped })
	d := *flagDuration
	if d == 0 {
		d = 25 * time.Second
	}
	end := time.Now().Add(d)
	counts := make([]int, numChaosActions)
	for time.Now().Before(end) {
		a := chaosAction(e.rng.Intn(int(numChaosActions)))
		if e.chaosStep(a) {
			counts[a]++
		}
		time.Sleep(time.Duration(300+e.rng.Intn(1200)) * time.Millisecond)
	}
	for _, id := range e.ids() {
		if e.nodes[id].proc != nil && !e.alive(id) {
			e.start(id)
		}
	}
	var summary []any
	for i, n := range counts {
		summary = append(summary, chaosNames[i], n)
	}
	e.t.Logf("chaos for %v: %v", d, summary)
}

// chaosStep injects one fault; false when the cluster's state did not allow it (e.g. killing
// would leave fewer than two nodes running).
func (e *env) chaosStep(a chaosAction) bool {
	live := e.live()
	var dead []string
	for _, id := range e.ids() {
		if e.nodes[id].proc != nil && !e.alive(id) {
			dead = append(dead, id)
		}
	}
	pick := func(ids []string) string { return ids[e.rng.Intn(len(ids))] }
	switch a {
	case chaosKill, chaosTerm:
		if len(live) <= 2 {
			return false
		}
		id := pick(live)
		e.t.Logf("chaos: %s %s", chaosNames[a], id)
		if a == chaosKill {
			e.kill(id)
		} else {
			e.stop(id)
		}
	case chaosRestart:
		if len(dead) == 0 {
			return false
		}
		id := pick(dead)
		e.t.Logf("chaos: restart %s", id)
		e.start(id)
	case chaosPause:
		if len(live) <= 2 {
			return false
		}
		id := pick(live)
		d := time.Duration(500+e.rng.Intn(int(2*ttl/time.Millisecond))) * time.Millisecond
		e.t.Logf("chaos: pause %s for %v", id, d)
		e.pause(id)
		time.Sleep(d)
		e.resume(id)
	case chaosTransport:
		id := pick(live)
		f := transportFaults[e.rng.Intn(len(transportFaults))]
		d := time.Duration(1000+e.rng.Intn(2000)) * time.Millisecond
		e.t.Logf("chaos: %s=%s on %s for %v", f.name, f.terms, id, d)
		e.enable(id, f.name, f.terms)
		time.Sleep(d)
		e.disable(id, f.name)
	case chaosEtcd:
		m := e.etcd.members[e.rng.Intn(len(e.etcd.members))]
		e.t.Logf("chaos: SIGKILL etcd member %s for 2s", m.name)
		e.etcd.kill(m)
		time.Sleep(2 * time.Second)
		e.etcd.restart(m)
	}
	return true
}

package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tidemark/tidemark/etcdutil"
)

// The timing scenarios measure issue 9's two bounds with real processes: kill -9 of the
// maintainer to every span replicating under the new epoch (within TTL + 1 s), and the
// convergence after etcd serves again following an outage (within TTL + 2 s, and no slower at
// the 7th outage in a row than at the first). The long ones run a 5 s TTL, the production
// default, and are not in the CI set; the short ones run the suite's 2 s TTL.
//
// failover-timing and the short ones run the etcd dispatcher under the load. failover-timing
// keeps the source and its mirror in an etcd of their own (sourceEtcd), as production does:
// its bound is the scheduler's at 1,000 spans, and with the source and mirror in the
// scheduler's own etcd (on the CI machine's 2 cores, one disk) the load's and the mirror's
// writes competed with the leases and elections: kill to elected took a median 4.7 s of the
// 5 s TTL and one election 27 s. (Measured apart, midway through a run the source had
// committed some 36,000 proposals, the scheduler's etcd 92; the source had one watch stream
// per node for all its dispatchers' watches, so per-dispatcher streams or progress requests
// are not the cost.) The short ones (100 spans) share the scheduler's etcd and pass their bounds.
//
// etcd-outages and its short form run the etcd dispatcher with a source etcd of their own,
// which keeps serving through the freezes. A node whose session ends closes its dispatchers,
// and their successors start from the persisted changefeed checkpoint. That checkpoint moves only
// once every span's new dispatcher has reported a checkpoint above it (about 1-2 s after
// convergence at 1,000 spans, 0.9 s at 100), and only while etcd serves. So each outage now
// waits for the checkpoint to pass the source revision at convergence before the next freeze.
// Before, the next freeze came right after convergence: no checkpoint was ever persisted, and
// every outage replayed the whole history (55,023 of 99,231 mirror events).
func timingScenarios() []scenario {
	return []scenario{
		{name: "failover-timing", sourceEtcd: true, nodes: 3, tables: 1000, ttl: 5 * time.Second,
			run: func(e *env) { failoverTiming(e, 20, time.Second) }},
		{name: "failover-timing-short", ci: true, nodes: 3, tables: 100,
			run: func(e *env) { failoverTiming(e, 3, time.Second) }},
		{name: "etcd-outages", sourceEtcd: true, nodes: 3, tables: 1000, ttl: 5 * time.Second,
			run: func(e *env) { etcdOutages(e, 7, 2) }},
		{name: "etcd-outages-short", ci: true, sourceEtcd: true, nodes: 3, tables: 100,
			run: func(e *env) { etcdOutages(e, 2, 2) }},
	}
}

// failoverTiming kills the maintainer with SIGKILL kills times in a row and measures, for each,
// the time from the kill until a new maintainer's HTTP API shows every span replicating on the
// live nodes with no operator left. The HTTP API is read rather than the status in etcd, which
// is written once a second and would add up to a second to every figure. After each kill the
// killed node is started again and the schedule rebalanced before the next one.
func failoverTiming(e *env, kills int, slack time.Duration) {
	e.startNodes()
	e.createChangefeed()
	e.converge(60*time.Second, "initial placement")
	var took, toElected, toBooted, toReplicating []time.Duration
	for i := 1; i <= kills; i++ {
		maint, epoch := e.maintainer()
		offsets := map[string]int64{}
		for _, id := range e.live() {
			offsets[id] = e.logSize(id)
		}
		start := time.Now()
		e.kill(maint)
		d, next := e.waitMaintained(start, epoch, 30*time.Second)
		took = append(took, d)
		p := e.failoverPhases(next.node, offsets[next.node], next.Epoch, start)
		toElected, toBooted, toReplicating = append(toElected, p.elected), append(toBooted, p.bootstrapped), append(toReplicating, p.replicating)
		e.t.Logf("KILL %d/%d: SIGKILL of maintainer %s (epoch %d) -> %s (epoch %d) maintains every span: %v "+
			"(elected after %v, bootstrapped %v later, every span replicating %v after that)",
			i, kills, maint, epoch, next.node, next.Epoch, d.Round(10*time.Millisecond),
			p.elected.Round(time.Millisecond), p.bootstrapped.Round(time.Millisecond), p.replicating.Round(time.Millisecond))
		e.start(maint)
		e.converge(60*time.Second, fmt.Sprintf("rebalanced after %s came back", maint))
	}
	lo, med, hi := spread(took)
	limit := e.ttl + slack
	e.t.Logf("FAILOVER kills=%d ttl=%v min=%v median=%v max=%v limit=%v all=%v", kills, e.ttl,
		lo.Round(10*time.Millisecond), med.Round(10*time.Millisecond), hi.Round(10*time.Millisecond), limit, rounded(took))
	for _, ph := range []struct {
		what string
		ds   []time.Duration
	}{{"kill -> elected", toElected}, {"elected -> bootstrapped", toBooted}, {"bootstrapped -> replicating", toReplicating}} {
		lo, med, hi := spread(ph.ds)
		e.t.Logf("PHASE %-28s min=%v median=%v max=%v", ph.what, lo.Round(time.Millisecond), med.Round(time.Millisecond), hi.Round(time.Millisecond))
	}
	if hi > limit {
		e.t.Errorf("failover took up to %v, above TTL + %v = %v", hi.Round(10*time.Millisecond), slack, limit)
	}
}

// etcdOutages freezes every etcd member (SIGSTOP) for ttls times the TTL, outages times in a row, and
// measures after each the time from the members' SIGCONT until one maintainer of a new epoch
// shows every span replicating (HTTP API) and no other node claims the changefeed.
func etcdOutages(e *env, outages, ttls int) {
	outage := time.Duration(ttls) * e.ttl
	e.startNodes()
	e.createChangefeed()
	e.converge(60*time.Second, "initial placement")
	// Besides the bound (TTL + 2 s from etcd serving again), each node must be back
	// within one lease grant deadline (max(1 s, TTL/5), server/session.go) of etcd serving:
	// grants sent while etcd was frozen may be lost and are resent at that pace, and the
	// election, restore and rebalance after take well under restoreSlack. A wait between
	// session attempts that grows from outage to outage breaks this bound first.
	grant := min(max(e.ttl/5, time.Second), e.ttl)
	const restoreSlack = 1500 * time.Millisecond
	var took []time.Duration
	for i := 1; i <= outages; i++ {
		_, epoch := e.maintainer()
		for _, m := range e.etcd.members {
			m.proc.signal(syscall.SIGSTOP)
		}
		time.Sleep(outage)
		for _, m := range e.etcd.members {
			m.proc.signal(syscall.SIGCONT)
		}
		back := time.Now()
		serving := e.etcdServing(back)
		d, next := e.waitMaintained(back, epoch, 60*time.Second)
		took = append(took, d)
		served := <-serving
		e.t.Logf("OUTAGE %d/%d: etcd frozen %v; after SIGCONT etcd served again in %v, %s (epoch %d -> %d) maintains every span in %v",
			i, outages, outage, served.Round(10*time.Millisecond), next.node, epoch, next.Epoch, d.Round(10*time.Millisecond))
		if bound := served + grant + restoreSlack; d > bound {
			e.t.Errorf("outage %d: converged %v after SIGCONT, more than one grant deadline (%v) + %v after etcd served again (%v)",
				i, d.Round(10*time.Millisecond), grant, restoreSlack, served.Round(10*time.Millisecond))
		}
		// The etcd status catches up (the checkpoint moves again) before the next outage.
		st, _ := e.converge(30*time.Second, fmt.Sprintf("status published after outage %d", i))
		if e.cdc != nil {
			target := e.revision()
			e.t.Logf("OUTAGE %d/%d: changefeed checkpoint %d (start %d, source at %d)", i, outages, st.CheckpointTs, e.cdc.created, target)
			st, took, ok := e.poll(e.cf, 60*time.Second, func(st etcdutil.ChangefeedStatus) bool { return int64(st.CheckpointTs) >= target })
			e.t.Logf("OUTAGE %d/%d: checkpoint %d reached %d: %v, %v after convergence", i, outages, st.CheckpointTs, target, ok, took.Round(10*time.Millisecond))
			// Without a checkpoint past the outage, the next one ends every dispatcher's session
			// again and their successors replay the whole history from the start.
			if !ok {
				e.t.Errorf("outage %d: the changefeed checkpoint stayed at %d, below source revision %d, 60s after convergence",
					i, st.CheckpointTs, target)
			}
		}
	}
	limit := e.ttl + 2*time.Second
	lo, med, hi := spread(took)
	e.t.Logf("OUTAGES n=%d outage=%v ttl=%v min=%v median=%v max=%v limit=%v all=%v", outages, outage, e.ttl,
		lo.Round(10*time.Millisecond), med.Round(10*time.Millisecond), hi.Round(10*time.Millisecond), limit, rounded(took))
	for i, d := range took {
		if d > limit {
			e.t.Errorf("outage %d: converged %v after etcd came back, above TTL + 2s = %v", i+1, d.Round(10*time.Millisecond), limit)
		}
	}
	// Recovery must not get slower outage after outage (issue 9: a backoff that never reset).
	const tolerance = time.Second
	if n := len(took); n > 1 && took[n-1] > took[0]+tolerance {
		e.t.Errorf("outage %d converged in %v, slower than the first (%v) by more than %v",
			n, took[n-1].Round(10*time.Millisecond), took[0].Round(10*time.Millisecond), tolerance)
	}
}

// etcdServing delivers how long after since etcd first answered a linearizable read (a raft
// leader and a quorum again): the outage figures are measured from SIGCONT, which includes it.
func (e *env) etcdServing(since time.Time) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		for time.Since(since) < time.Minute {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			_, err := e.cli.Get(ctx, "health")
			cancel()
			if err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		out <- time.Since(since)
	}()
	return out
}

// apiStatus is the part of GET /api/v1/changefeeds/{id} (a maintainer's status) read here.
type apiStatus struct {
	node         string
	Epoch        uint64            `json:"epoch"`
	Bootstrapped bool              `json:"bootstrapped"`
	Spans        map[string]int    `json:"spans"`
	NodeSpans    map[string]int    `json:"node_spans"`
	Operators    []json.RawMessage `json:"operators"`
	Nodes        map[string]string `json:"nodes"`
}

// waitMaintained polls every live node's HTTP API until exactly one answers as the changefeed's
// maintainer, at an epoch above after, with I6's convergence over the live nodes. It returns
// the time since start and that maintainer's status, and fails the test after timeout.
func (e *env) waitMaintained(start time.Time, after uint64, timeout time.Duration) (time.Duration, apiStatus) {
	e.t.Helper()
	live := e.live()
	ok := converged(live)
	var last []apiStatus
	for time.Since(start) < timeout {
		last = last[:0]
		for _, id := range live {
			var st apiStatus
			if err := e.httpJSON(e.node(id), http.MethodGet, "/api/v1/changefeeds/"+e.cf, "", &st); err == nil {
				st.node = id
				last = append(last, st)
			}
		}
		if len(last) == 1 && last[0].Epoch > after && ok(last[0].asEtcd()) {
			return time.Since(start), last[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	var seen []string
	for _, st := range last {
		seen = append(seen, fmt.Sprintf("%s epoch %d bootstrapped %v spans %v nodes %v operators %d",
			st.node, st.Epoch, st.Bootstrapped, st.Spans, st.NodeSpans, len(st.Operators)))
	}
	e.t.Fatalf("no single maintainer above epoch %d converged on %v within %v; maintainers seen: %s",
		after, live, timeout, strings.Join(seen, "; "))
	return 0, apiStatus{}
}

// asEtcd is the status in the shape the etcd-side checks (converged) take.
func (st apiStatus) asEtcd() etcdutil.ChangefeedStatus {
	return etcdutil.ChangefeedStatus{Maintainer: st.node, Epoch: st.Epoch, Bootstrapped: st.Bootstrapped,
		Spans: st.Spans, NodeSpans: st.NodeSpans, Operators: len(st.Operators)}
}

// spread is the minimum, median (the upper one of an even count) and maximum of ds.
func spread(ds []time.Duration) (lo, med, hi time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[0], s[len(s)/2], s[len(s)-1]
}

func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

// phases is where one failover's time went, read from the new maintainer's log: kill to
// elected (the dead node's lease expiring, then the election watch), elected to bootstrapped
// (bootstrap requests and answers, restore), and bootstrapped to every span replicating (Adds
// sent, dispatchers created, their Working reported by heartbeat). Zero when a line is missing.
type phases struct{ elected, bootstrapped, replicating time.Duration }

func (e *env) failoverPhases(node string, offset int64, epoch uint64, kill time.Time) phases {
	at := func(msg string) time.Time {
		for _, end := range []string{",", "}"} {
			if line, ok := logLine(e.node(node).logPath, offset, []string{`"msg":"` + msg + `"`, fmt.Sprintf(`"epoch":%d%s`, epoch, end)}); ok {
				return logTime(line)
			}
		}
		return time.Time{}
	}
	el, bo, re := at("elected maintainer"), at("maintainer bootstrapped"), at("every span replicating")
	var p phases
	if !el.IsZero() {
		p.elected = el.Sub(kill)
		if !bo.IsZero() {
			p.bootstrapped = bo.Sub(el)
			if !re.IsZero() {
				p.replicating = re.Sub(bo)
			}
		}
	}
	return p
}

// logTime is the "time" field of a JSON log line; zero when absent or malformed.
func logTime(line string) time.Time {
	var l struct {
		Time time.Time `json:"time"`
	}
	if json.Unmarshal([]byte(line), &l) != nil {
		return time.Time{}
	}
	return l.Time
}

package failover

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/failpoints"
)

// scenarios is the suite, in the order `make failover-test` runs it. Every scenario runs the
// etcd dispatcher under a load and checks the data (into the mirror, or file sinks where
// fileSink is set); alsoSim adds a run of the same faults on the simulated dispatcher.
func scenarios() []scenario {
	all := []scenario{
		{name: "kill-node-and-maintainer", ci: true, nodes: 3, tables: 100, run: killNodeAndMaintainer},
		{name: "kill-maintainer-mid-add", nodes: 3, tables: 60, run: killMaintainerMidAdd},
		{name: "kill-maintainer-mid-move", ci: true, fileSink: true, nodes: 2, tables: 60, run: killMaintainerMidMove},
		{name: "kill-maintainer-mid-mbb-move", nodes: 2, tables: 60, run: killMaintainerMidMBBMove},
		{name: "kill-maintainer-mid-checkpoint", nodes: 3, tables: 60, run: killMaintainerMidCheckpoint},
		{name: "kill-maintainer-mid-bootstrap", nodes: 3, tables: 60, run: killMaintainerMidBootstrap},
		{name: "crash-dm-at-journal-update", fileSink: true, nodes: 3, tables: 60, run: crashDMAtJournalUpdate},
		{name: "crash-at-restore", nodes: 3, tables: 60, run: crashAtRestore},
		{name: "kill-maintainer-mid-remove", ci: true, nodes: 3, tables: 60, run: killMaintainerMidRemove},
		{name: "kill-maintainer-mid-split", nodes: 3, tables: 12, needs: "operator/split.go", run: killMaintainerMidSplit},
		{name: "kill-maintainer-mid-merge", nodes: 3, tables: 12, needs: "operator/merge.go", run: killMaintainerMidMerge},
		{name: "kill-dm-mid-split", nodes: 3, tables: 12, needs: "operator/split.go", run: killDMMidSplit},
		{name: "kill-dm-mid-merge", nodes: 3, tables: 12, needs: "operator/merge.go", run: killDMMidMerge},
		{name: "pause-maintainer-past-ttl", ci: true, nodes: 3, tables: 60, run: pauseMaintainerPastTTL},
		{name: "stale-requests-fenced", ci: true, nodes: 3, tables: 60, run: staleRequestsFenced},
		{name: "forged-envelopes", ci: true, nodes: 4, tables: 60, run: forgedEnvelopes},
		{name: "slow-node-at-bootstrap", nodes: 3, tables: 60, run: slowNodeAtBootstrap},
		{name: "kill-etcd-member", nodes: 3, tables: 60, run: func(e *env) { killEtcdMember(e, false) }},
		{name: "kill-etcd-leader", ci: true, nodes: 3, tables: 60, run: func(e *env) { killEtcdMember(e, true) }},
		{name: "rolling-restart", fileSink: true, nodes: 3, tables: 60, run: rollingRestart},
		{name: "random-chaos", ci: true, nodes: 4, tables: 60, run: randomChaos},
		// The etcd dispatcher's file sink fills (dispatcher/etcdcdc/file-sink-enospc); the -sim
		// copy fills the simulated dispatcher's (dispatcher/sink-enospc) over more spans.
		{name: "full-disk-on-node", fileSink: true, nodes: 4, tables: 60, run: fullDiskOnNode},
		{name: "full-disk-on-node-sim", sim: true, nodes: 4, tables: 300, run: fullDiskOnNode},
	}
	all = append(all, cdcScenarios()...)
	all = append(all, timingScenarios()...)
	// The simulated dispatcher's sink records show when two dispatchers worked one key at once
	// (I1), whatever a sink's fence then refused: these faults are where a node could obey a
	// stale or forged request, or the scheduler place a key twice. A make-before-break Move is
	// where a destination could write before its origin stopped: the etcd mirror's fence hides
	// such a brief second writer, these records do not.
	return alsoSim(all, "kill-node-and-maintainer", "kill-maintainer-mid-mbb-move", "stale-requests-fenced",
		"forged-envelopes", "random-chaos")
}

// alsoSim appends, for each named scenario, a copy <name>-sim on the simulated dispatcher,
// outside the CI set.
func alsoSim(all []scenario, names ...string) []scenario {
names:
	for _, n := range names {
		for _, sc := range all {
			if sc.name == n {
				sc.name, sc.sim, sc.ci, sc.fileSink = n+"-sim", true, false, false
				all = append(all, sc)
				continue names
			}
		}
		panic("alsoSim: no scenario named " + n)
	}
	return all
}

// holdMaintainer enables a hold at failpoint fp on every live node, runs trigger, and waits until
// the maintainer reaches fp. The others are released at once so that a successor does not stop
// at the same step. It returns the held node and whether fp was reached.
func (e *env) holdMaintainer(fp string, timeout time.Duration, trigger func()) (string, bool) {
	e.t.Helper()
	live := e.live()
	offsets := map[string]int64{}
	for _, id := range live {
		offsets[id] = e.logSize(id)
		e.enable(id, fp, `return("`+failpoints.HoldValue+`")`)
	}
	trigger()
	deadline := time.Now().Add(timeout)
	held := ""
	for held == "" && time.Now().Before(deadline) {
		for _, id := range live {
			if logHas(e.nodes[id].logPath, offsets[id], []string{"failpoint reached", fp}) {
				held = id
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range live {
		if id != held {
			e.disable(id, fp)
		}
	}
	if held == "" {
		e.t.Logf("failpoint %s not reached within %v", fp, timeout)
		return "", false
	}
	e.t.Logf("maintainer %s holds at %s", held, fp)
	return held, true
}

// holdKillRelease is the per-operator scenario's core: hold the maintainer right after a phase
// of the operator was sent, kill -9 it, and let a successor restore and finish the operator.
func (e *env) holdKillRelease(fp string, trigger func()) {
	e.t.Helper()
	held, ok := e.holdMaintainer(fp, 30*time.Second, trigger)
	if !ok {
		e.t.Fatalf("the operator never reached %s: the scenario tested nothing", fp)
	}
	// The held maintainer keeps its lease, so the election key still names it.
	if maint, epoch := e.maintainer(); maint != held {
		e.t.Fatalf("%s reached %s but %s (epoch %d) maintains", held, fp, maint, epoch)
	}
	_, epoch := e.maintainer()
	e.killMaintainerAndRecover(held, epoch)
	e.start(held) // without the failpoint: enabled ones die with the process
}

func killMaintainerMidAdd(e *env) {
	e.startNodes()
	// The first Adds are the initial placement, so creating the changefeed is the trigger.
	e.holdKillRelease(failpoints.AddSent, e.createChangefeed)
}

func killMaintainerMidMove(e *env) {
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement on 2 nodes")
	fp := []string{failpoints.MoveRemoveSent, failpoints.MoveAddSent}[e.rng.Intn(2)]
	// A third node makes the balance scheduler move spans to it.
	e.holdKillRelease(fp, func() { e.start("n3") })
}

// killMaintainerMidMBBMove is killMaintainerMidMove with make-before-break moves: the
// maintainer is held and killed right after a prepare, a stop of the origin or a commit was
// sent; the successor resumes each Move at its phase (finish checks I1 and I2 over the sinks,
// and that every span ends on exactly one dispatcher). Then a node is drained while the
// maintainer's messages to it are mbbStopDelay late: each stop reaches its origin that much
// after a prepared destination could have been told to write, so a destination committed
// before its origin's Stopped report is a second writer for longer than the sinks' slack (the
// -sim copy's records show it; the etcd mirror's fence alone would hide it).
func killMaintainerMidMBBMove(e *env) {
	e.startNodes()
	e.info.MakeBeforeBreak = true
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement on 2 nodes")
	fp := []string{failpoints.MovePrepareSent, failpoints.MoveRemoveSent, failpoints.MoveAddSent}[e.rng.Intn(3)]
	e.t.Logf("holding the maintainer at %s", fp)
	e.holdKillRelease(fp, func() { e.start("n3") })
	e.converge(60*time.Second, "after the failover")
	maint, _ := e.maintainer()
	origin := e.other(maint)
	e.enable(maint, failpoints.TransportDelay, fmt.Sprintf(`return("%s:%d")`, origin, mbbStopDelay/time.Millisecond))
	if out, err := e.ctl("drain", origin, "--timeout", "60s"); err != nil {
		e.t.Fatalf("drain %s: %v: %s", origin, err, out)
	}
	e.disable(maint, failpoints.TransportDelay)
	e.t.Logf("drained %s with the maintainer's messages to it %v late", origin, mbbStopDelay)
	if out, err := e.ctl("drain", origin, "--cancel"); err != nil {
		e.t.Fatalf("end the drain of %s: %v: %s", origin, err, out)
	}
}

// mbbStopDelay is well past sinkcheck.WindowSlackMs and a node loop's tick.
const mbbStopDelay = 1500 * time.Millisecond

// killMaintainerMidRemove: the maintainer starts a plain Remove for the dispatcher of a table
// that leaves the changefeed (a late node's stray dispatchers no longer exist: a node silent
// past the bootstrap timeout is evicted and rejoins empty). The Remove is held once sent and the
// maintainer killed; the successor finds the journal entry of a table no longer configured and
// removes the dispatcher itself. The sinks are then checked over the remaining tables.
func killMaintainerMidRemove(e *env) {
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement")
	gone := e.info.Tables[len(e.info.Tables)-1].ID
	e.holdKillRelease(failpoints.RemoveSent, func() {
		e.info.Tables = e.info.Tables[:len(e.info.Tables)-1]
		if src := e.info.Source; src != nil {
			src.Ranges = src.Ranges[:len(src.Ranges)-1] // an etcd table is its source range
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := etcdutil.UpdateChangefeed(ctx, e.cli, e.keys, e.info); err != nil {
			e.t.Fatalf("remove table %d: %v", gone, err)
		}
	})
}

// pauseMaintainerPastTTL: SIGSTOP the maintainer past its session TTL, let another take over,
// SIGCONT it. It must not change anything anywhere: finish checks that no sink record of it
// overlaps the new owners' (I1) and that etcd never saw a write of its older epoch after the
// new one (I5).
func pauseMaintainerPastTTL(e *env) {
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement")
	maint, epoch := e.maintainer()
	e.pause(maint)
	live := e.live()
	st, took := e.waitFor(e.cf, 30*time.Second, "takeover from paused "+maint, func(st etcdutil.ChangefeedStatus) bool {
		return st.Epoch > epoch && st.Maintainer != maint && converged(live)(st)
	})
	e.t.Logf("%s paused: %s took over with epoch %d after %v (TTL %v)", maint, st.Maintainer, st.Epoch, took, ttl)
	time.Sleep(ttl)
	e.resume(maint)
	time.Sleep(2 * ttl)
	if l, err := e.leader(e.cf); err != nil || l.Epoch != st.Epoch {
		e.t.Errorf("after SIGCONT of %s the maintainer is %+v (%v), want %s epoch %d", maint, l, err, st.Maintainer, st.Epoch)
	}
}

// killEtcdMember kills one etcd member (the raft leader or a follower) under scheduling load: a
// node joins and another dies while the member is down, so spans move and are re-placed.
func killEtcdMember(e *env, leader bool) {
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement")
	lead, err := e.etcd.leader()
	if err != nil {
		e.t.Fatal(err)
	}
	victim := lead
	if !leader {
		for _, m := range e.etcd.members {
			if m != lead {
				victim = m
				break
			}
		}
	}
	e.t.Logf("SIGKILL etcd member %s (raft leader: %v)", victim.name, victim == lead)
	e.etcd.kill(victim)
	// The node joins once the two members left have a quorum again: a server gives up at start
	// when etcd cannot be reached, and under CI's load the election after a leader's death once
	// outlasted that (CI on 756b7a8: "node n4 did not come up"). The member stays down.
	e.etcd.waitHealthy(30 * time.Second)
	e.start("n4")
	maint, _ := e.maintainer()
	dead := e.other(maint, "n4")
	e.kill(dead)
	_, took := e.converge(60*time.Second, "with etcd member "+victim.name+" down")
	e.t.Logf("converged with %s down after %v", victim.name, took)
	e.etcd.restart(victim)
	e.start(dead)
}

// rollingRestart stops and restarts every node in turn (SIGTERM, so maintainers resign), without
// waiting for the moves that each restart starts to finish.
func rollingRestart(e *env) {
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement")
	order := e.live()
	e.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, id := range order {
		e.stop(id)
		time.Sleep(time.Duration(300+e.rng.Intn(700)) * time.Millisecond)
		e.start(id)
		time.Sleep(time.Duration(500+e.rng.Intn(1000)) * time.Millisecond)
	}
}

// slowNodeAtBootstrap: a live node whose messages take longer than the bootstrap timeout (a
// 15 s transport delay) while the maintainer is killed. The successor does not assume it dead:
// it evicts it (deletes its registration under the election guard), the node's lease guard
// stops its dispatchers and it rejoins empty, and only then is the schedule restored without
// it. No key may be owned twice meanwhile.
func slowNodeAtBootstrap(e *env) {
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement")
	maint, epoch := e.maintainer()
	slow := e.other(maint)
	// Past the new maintainer's BootstrapTimeout (10 s after its election) with a margin, so the
	// slow node is evicted rather than answering just in time.
	const delay = 15 * time.Second
	e.enable(slow, failpoints.TransportDelay, fmt.Sprintf("return(%d)", delay/time.Millisecond))
	start := time.Now()
	e.kill(maint)
	st, took := e.waitFor(e.cf, 60*time.Second, "a new maintainer", func(st etcdutil.ChangefeedStatus) bool {
		return st.Epoch > epoch && st.Bootstrapped
	})
	e.t.Logf("%s bootstrapped with epoch %d %v after the kill; %s's messages are %v late", st.Maintainer, st.Epoch, took, slow, delay)
	// The silent node is evicted, never assumed dead: its registration was deleted under the
	// new maintainer's election guard and it stopped every dispatcher before rejoining.
	// Any maintainer term may have done it (elections can repeat while the slow node's messages
	// lag), so every node's log is searched; a slow node whose own session ended left by itself.
	if st.Maintainer != slow {
		if how, ok := slowNodeGone(e, slow); ok {
			e.t.Logf("%s stopped before its spans moved: %s", slow, how)
		} else {
			e.t.Errorf("%s bootstrapped while the silent %s was neither evicted nor gone", st.Maintainer, slow)
		}
	}
	time.Sleep(time.Until(start.Add(delay + 2*time.Second)))
	e.disable(slow, failpoints.TransportDelay)
	e.start(maint)
}

// killMaintainerMidCheckpoint holds the maintainer just before or just after it writes the
// changefeed checkpoint to etcd and kills it there: the successor must start from what etcd
// holds, and the checkpoint must never go back (I3).
func killMaintainerMidCheckpoint(e *env) {
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement")
	fp := []string{failpoints.BeforeCheckpointPersist, failpoints.AfterCheckpointPersist}[e.rng.Intn(2)]
	// The checkpoint advances all the time, so no trigger is needed.
	e.holdKillRelease(fp, func() {})
}

// killMaintainerMidBootstrap is a double failover: the maintainer is killed, and its successor
// is killed right after it sent its bootstrap requests, before it restored anything. The third
// node must restore from the dispatcher managers' reports alone.
func killMaintainerMidBootstrap(e *env) {
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement")
	first, _ := e.maintainer()
	e.holdKillRelease(failpoints.BootstrapSent, func() { e.kill(first) })
	e.start(first)
}

// waitCrash waits until node id's process exits and checks that a failpoint panic killed it.
func (e *env) waitCrash(id string, timeout time.Duration) {
	e.t.Helper()
	if !e.node(id).proc.waitFor(timeout) {
		e.t.Fatalf("%s did not crash at its failpoint within %v", id, timeout)
	}
	b, _ := os.ReadFile(e.node(id).logPath + ".stderr")
	if !strings.Contains(string(b), "failpoint panic") {
		e.t.Fatalf("%s exited, but not at a failpoint panic:\n%s", id, tail(b, 1024))
	}
}

// crashDMAtJournalUpdate crashes a dispatcher manager's process just before or just after it
// records a request in its in-flight map: a node dies with an operator half-recorded.
func crashDMAtJournalUpdate(e *env) {
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement")
	maint, _ := e.maintainer()
	victim := e.other(maint)
	fp := []string{failpoints.DMBeforeJournalUpdate, failpoints.DMAfterJournalUpdate}[e.rng.Intn(2)]
	e.enable(victim, fp, "panic")
	// The spans of a killed node are re-added across the others, the victim among them.
	dead := e.other(maint, victim)
	e.t.Logf("%s=panic on %s; SIGKILL %s to send it work", fp, victim, dead)
	e.kill(dead)
	e.waitCrash(victim, 20*time.Second)
	e.converge(60*time.Second, "after the crash of "+victim)
	e.start(victim)
	e.start(dead)
}

// crashAtRestore crashes the successor maintainer inside its restore (before or after the plan
// is applied): the remaining node must restore from scratch. The third node is paused while the
// maintainer is killed, so that the node armed with the failpoint wins the election.
func crashAtRestore(e *env) {
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement")
	maint, epoch := e.maintainer()
	armed := e.other(maint)
	third := e.other(maint, armed)
	fp := []string{failpoints.BeforeRestore, failpoints.AfterRestore}[e.rng.Intn(2)]
	e.enable(armed, fp, "panic")
	e.pause(third)
	e.kill(maint)
	e.waitCrash(armed, 20*time.Second)
	e.t.Logf("%s crashed at %s after %s was killed; resuming %s", armed, fp, maint, third)
	e.resume(third)
	live := e.live()
	st, took := e.waitFor(e.cf, 60*time.Second, "recovery by "+third, func(st etcdutil.ChangefeedStatus) bool {
		return st.Epoch > epoch && st.Maintainer == third && converged(live)(st)
	})
	e.t.Logf("%s maintains with epoch %d, converged %v after resuming", third, st.Epoch, took)
	e.start(maint)
	e.start(armed)
}

// slowNodeGone finds the evidence that node stopped working before a maintainer gave its spans
// away: an eviction logged by any maintainer, or the node's own session ending.
func slowNodeGone(e *env, node string) (string, bool) {
	for _, n := range e.nodes {
		if line, ok := logLastLine(n.logPath, []string{"evicted node silent", `"evicted":"` + node + `"`}); ok {
			return "evicted: " + line, true
		}
	}
	if line, ok := logLastLine(e.nodes[node].logPath, []string{"etcd session ended"}); ok {
		return "its session ended: " + line, true
	}
	return "", false
}

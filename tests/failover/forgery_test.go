package failover

import (
	"context"
	"fmt"
	"time"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/failpoints"
	"github.com/tidemark/tidemark/tests/wireclient"
)

// staleRequestsFenced is I5 end to end: a maintainer's Add requests sit in its transport (a
// 12 s transport delay) while it is held right after sending them and then paused past its TTL.
// A successor takes over and places the spans itself; when the old process resumes, its stale
// requests reach the other nodes, which must reject them by epoch. A dispatcher manager that
// obeyed them would run a second dispatcher on spans the successor placed: I1 fails.
func staleRequestsFenced(e *env) {
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement")
	maint, epoch := e.maintainer()
	victim := e.other(maint)
	offsets := map[string]int64{}
	for _, id := range e.live() {
		offsets[id] = e.logSize(id)
	}
	const delay = 12 * time.Second
	e.enable(maint, failpoints.TransportDelay, fmt.Sprintf("return(%d)", delay/time.Millisecond))
	// Killing a node makes the maintainer re-add its spans: those are the requests held back.
	held, ok := e.holdMaintainer(failpoints.AddSent, 20*time.Second, func() { e.kill(victim) })
	if !ok || held != maint {
		e.t.Fatalf("maintainer %s did not hold at %s (held: %q)", maint, failpoints.AddSent, held)
	}
	sent := time.Now()
	e.pause(maint)
	live := e.live()
	st, took := e.waitFor(e.cf, 30*time.Second, "takeover from paused "+maint, func(st etcdutil.ChangefeedStatus) bool {
		return st.Epoch > epoch && st.Maintainer != maint && converged(live)(st)
	})
	e.t.Logf("%s took over with epoch %d after %v and placed the spans; resuming %s", st.Maintainer, st.Epoch, took, maint)
	e.resume(maint)
	e.disable(maint, failpoints.AddSent)
	time.Sleep(time.Until(sent.Add(delay + 3*time.Second)))
	e.disable(maint, failpoints.TransportDelay)
	e.start(victim)
	e.after = append(e.after, func() {
		for _, id := range live {
			if logHas(e.nodes[id].logPath, offsets[id], []string{"envelope rejected", "stale epoch", `"from":"` + maint + `"`}) {
				e.t.Logf("I5: %s rejected the stale requests of %s (epoch %d)", id, maint, epoch)
				return
			}
		}
		e.t.Errorf("no node logged a rejection of %s's stale requests: they never arrived, the scenario tested nothing", maint)
	})
}

// forgedEnvelopes is issue 9 end to end: the hostile peer of tests/wireclient dials a live
// node like a peer (no TLS) and sends forged envelopes: higher epochs under the maintainer's own
// node ID (a create of a span another node owns, a remove of a working dispatcher), a
// registered node that is not the maintainer, an unregistered sender, replays of an older epoch,
// garbage. The target must keep following the real maintainer at the real epoch, the attacked
// spans keep their dispatchers and their checkpoints move, the real maintainer's admin move still
// works, and the sink checker of finish finds no key owned twice (I1) and no gap (I2).
func forgedEnvelopes(e *env) {
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The maintainer's own name can only be claimed to a node with a larger ID: if the
	// maintainer has the largest, it resigns until another node leads.
	for i := 0; ; i++ {
		maint, epoch := e.maintainer()
		if maint != e.live()[len(e.live())-1] {
			break
		}
		if i == 5 {
			e.t.Fatalf("%s still maintains after %d resignations", maint, i)
		}
		e.resignMaintainer(ctx, maint, epoch)
	}
	target, err := wireclient.Observe(ctx, wireclient.PlainHTTP, e.cli, e.keys, e.cf)
	if err != nil {
		e.t.Fatal(err)
	}
	offset := e.logSize(target.Node)
	attacks, skipped := wireclient.Attacks(target)
	if len(skipped) > 0 {
		e.t.Fatalf("attacks left out: %v", skipped)
	}
	for _, r := range wireclient.Run(ctx, target, attacks) {
		if r.Err != nil {
			e.t.Fatalf("attack %s not delivered to %s: %v", r.Attack, target.Node, r.Err)
		}
	}
	e.t.Logf("%d attacks sent to %s (maintainer %s epoch %d; victim %d.%d, foreign %d.%d on %s)", len(attacks),
		target.Node, target.Maintainer, target.Epoch, target.Victim.Dispatcher.Hi, target.Victim.Dispatcher.Lo,
		target.Foreign.Dispatcher.Hi, target.Foreign.Dispatcher.Lo, target.Foreign.Node)
	// Past the hold timeout of anything etcd did not refute, and long enough for a forged
	// effect to reach heartbeats and the published status.
	time.Sleep(5 * time.Second)
	if err := wireclient.Unharmed(ctx, e.cli, e.keys, target); err != nil {
		e.t.Errorf("forged envelopes harmed the cluster: %v", err)
	}
	msg, err := wireclient.MoveSpan(ctx, e.cli, e.keys, e.cf, target.Victim, target.Bystander)
	if err != nil {
		e.t.Errorf("the real maintainer's admin move after the attacks: %v", err)
	} else {
		e.t.Logf("the real maintainer still commands %s: %s", target.Node, msg)
	}
	e.after = append(e.after, func() {
		for _, want := range [][]string{
			{"dropped held envelopes whose epoch and sender etcd did not confirm"},
			{"envelope rejected", "sender is not a registered node"},
			{"envelope rejected", "sender is not the leader etcd confirmed"},
			{"envelope rejected", "stale epoch"},
			{"undecodable batch dropped"},
		} {
			if !logHas(e.nodes[target.Node].logPath, offset, want) {
				e.t.Errorf("%s never logged %q: that attack did not arrive, the scenario tested less than it says", target.Node, want)
			}
		}
	})
}

// resignMaintainer asks maint to resign through the admin queue (as `ctl resign` does) and waits
// for another node to lead.
func (e *env) resignMaintainer(ctx context.Context, maint string, epoch uint64) {
	e.t.Helper()
	req := etcdutil.AdminRequest{ID: etcdutil.NewAdminID(time.Now()), Changefeed: e.cf, Kind: admin.Resign,
		CreatedAt: time.Now()}
	if err := etcdutil.SubmitAdminRequest(ctx, e.cli, e.keys, req, time.Minute); err != nil {
		e.t.Fatal(err)
	}
	live := e.live()
	st, took := e.waitFor(e.cf, 30*time.Second, "another maintainer after "+maint+" resigned",
		func(st etcdutil.ChangefeedStatus) bool { return st.Epoch > epoch && converged(live)(st) })
	e.t.Logf("%s resigned; %s maintains with epoch %d after %v", maint, st.Maintainer, st.Epoch, took)
}

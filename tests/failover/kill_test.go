package failover

import (
	"time"

	"github.com/tidemark/tidemark/etcdutil"
)

// killNodeAndMaintainer: SIGKILL of a node that is not the maintainer re-places its spans within
// TTL + 3 s; SIGKILL of the maintainer's node makes another maintainer with a larger epoch.
func killNodeAndMaintainer(e *env) {
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement")
	maint, epoch := e.maintainer()
	victim := e.other(maint)
	e.kill(victim)
	st, took := e.converge(ttl+3*time.Second, "spans re-placed after SIGKILL of "+victim)
	e.t.Logf("SIGKILL %s (not maintainer): all spans replicating on the others after %v (TTL %v)", victim, took, ttl)
	if st.Epoch != epoch {
		e.t.Errorf("maintainer epoch changed from %d to %d though the maintainer's node lived", epoch, st.Epoch)
	}
	e.killMaintainerAndRecover(maint, epoch)
	e.start(victim)
	e.start(maint)
}

// killMaintainerAndRecover is the kill -9 of a maintainer and acceptance 2's measurement: from
// the kill to a new epoch with every span replicating and every restored operator finished.
func (e *env) killMaintainerAndRecover(maint string, epoch uint64) time.Duration {
	e.t.Helper()
	start := time.Now()
	e.kill(maint)
	live := e.live()
	st, _ := e.waitFor(e.cf, 60*time.Second, "recovery after SIGKILL of maintainer "+maint,
		func(st etcdutil.ChangefeedStatus) bool {
			return st.Epoch > epoch && st.Maintainer != maint && converged(live)(st)
		})
	took := time.Since(start)
	e.t.Logf("RECOVERY scenario=%s maintainer=%s new=%s epoch %d->%d took=%v ttl=%v (%.1f x TTL)",
		e.sc.name, maint, st.Maintainer, epoch, st.Epoch, took.Round(10*time.Millisecond), ttl, took.Seconds()/ttl.Seconds())
	return took
}

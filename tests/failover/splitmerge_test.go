package failover

import (
	"encoding/json"
	"time"

	"github.com/tidemark/tidemark/failpoints"
)

// Split and merge come from the load schedulers. With the simulated dispatcher every table
// carries load 40 over a split threshold of 30, so each splits (into SplitPieces pieces); for
// merges, four pieces of 10 are under a merge threshold of 15 and pairs of them merge back (20
// stays under the merge cap of three quarters of 30).
//
// The etcd dispatcher's load is the events per second it writes: about 85% of loadRate spread
// over the tables, or less when the machine is busy. There are at most 12 tables, so each
// carries a share worth splitting, and the split threshold is a quarter of a table's share, so
// whole tables split; the pieces without load keys (a split cuts the byte space evenly, the
// keys are digits) are cold and merge back, and the ones with keys split again until they are
// below the threshold.
func (e *env) hotTables(pieces uint32, merge uint64) {
	if e.sc.sim {
		for i := range e.info.Tables {
			e.info.Tables[i].Load = 40
		}
		e.info.SplitLoadThreshold, e.info.SplitPieces, e.info.MergeLoadThreshold = 30, pieces, merge
		return
	}
	e.info.Tables = e.info.Tables[:min(len(e.info.Tables), 12)]
	split := max(uint64(loadRate*85/100/len(e.info.Tables)/4), 2)
	e.info.SplitLoadThreshold, e.info.SplitPieces, e.info.MergeLoadThreshold = split, pieces, merge*split/30
}

func killMaintainerMidSplit(e *env) {
	e.hotTables(2, 0)
	e.startNodes()
	fp := []string{failpoints.SplitRemoveSent, failpoints.SplitAddSent}[e.rng.Intn(2)]
	e.holdKillRelease(fp, e.createChangefeed)
}

func killMaintainerMidMerge(e *env) {
	e.hotTables(4, 15)
	e.startNodes()
	e.holdKillRelease(failpoints.MergeSent, e.createChangefeed)
}

func killDMMidSplit(e *env) {
	e.hotTables(2, 0)
	e.killDestMidFlight(failpoints.SplitAddSent)
}

func killDMMidMerge(e *env) {
	e.hotTables(4, 15)
	e.killDestMidFlight(failpoints.MergeSent)
}

// killDestMidFlight holds the maintainer right after it sent a step of fp to another node,
// kills that node's process (its dispatcher manager with it), then releases the maintainer,
// which must finish or roll back the operator without the node. Splits and merges start only
// after a few load reports, so there is time to arm the failpoint once the maintainer is known.
func (e *env) killDestMidFlight(fp string) {
	e.t.Helper()
	e.startNodes()
	e.createChangefeed()
	maint, _ := e.maintainer()
	offset := e.logSize(maint)
	e.enable(maint, fp, `return("`+failpoints.HoldValue+`-not:`+maint+`")`)
	if !e.waitLog(maint, offset, 60*time.Second, "failpoint reached", fp) {
		e.t.Fatalf("maintainer %s sent no %s step to another node within 60s: the scenario tested nothing", maint, fp)
	}
	line, _ := logLastLine(e.nodes[maint].logPath, []string{"failpoint reached", fp})
	var rec struct {
		To string `json:"to"`
	}
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.To == "" || rec.To == maint {
		e.t.Fatalf("cannot tell the destination of the held step from %q (%v)", line, err)
	}
	e.t.Logf("maintainer %s holds after sending %s to %s; SIGKILL %s", maint, fp, rec.To, rec.To)
	e.kill(rec.To)
	e.disable(maint, fp)
	_, took := e.converge(60*time.Second, "after SIGKILL of "+rec.To+" mid-"+fp)
	e.t.Logf("converged without %s %v after its kill", rec.To, took)
	e.start(rec.To)
}

package failover

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/etcdutil"
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
// whole tables split. A split cuts the byte space evenly and the load's keys are digits, so all
// of a table's load lands in one piece, which splits again every SplitMergeCooldown until its
// pieces are under the threshold: about five rounds, 50 s. Each round restarts the table's
// cool-down, so its cold pieces cannot merge before the splitting ends. The merge scenarios
// therefore split the tables by hand (splitForMerge) with the split scheduler off: the pieces
// without keys are cold from their first load report and merge back within a few reports.
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

// coldPieces sets the changefeed up for merges: with the simulated dispatcher, hot tables that
// split into four pieces cold enough to merge; with the etcd dispatcher, no split scheduler and
// a merge threshold of 2 events/s, for the pieces splitForMerge makes.
func (e *env) coldPieces() {
	if e.sc.sim {
		e.hotTables(4, 15)
		return
	}
	e.info.Tables = e.info.Tables[:min(len(e.info.Tables), 12)]
	e.info.SplitLoadThreshold, e.info.SplitPieces, e.info.MergeLoadThreshold = 0, 4, 2
}

// splitForMerge asks the maintainer, through the admin queue as `ctl split TABLE --pieces 4`
// does, to split every table of an etcd changefeed; it does not wait for the answers, since
// the first merges may hold the maintainer before the last split is answered. The simulated
// dispatcher's tables split by themselves.
func (e *env) splitForMerge() {
	e.t.Helper()
	if e.sc.sim {
		return
	}
	e.converge(30*time.Second, "initial placement") // a span not yet placed cannot be split
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, t := range e.info.Tables {
		now := time.Now()
		req := etcdutil.AdminRequest{ID: etcdutil.NewAdminID(now), Changefeed: e.cf, Kind: admin.Split,
			Spans: []string{strconv.FormatInt(t.ID, 10)}, Pieces: 4, CreatedAt: now}
		if err := etcdutil.SubmitAdminRequest(ctx, e.cli, e.keys, req, time.Minute); err != nil {
			e.t.Fatalf("split table %d for the merge: %v", t.ID, err)
		}
	}
}

func killMaintainerMidMerge(e *env) {
	e.coldPieces()
	e.startNodes()
	e.holdKillRelease(failpoints.MergeSent, func() {
		e.createChangefeed()
		e.splitForMerge()
	})
}

func killDMMidSplit(e *env) {
	e.hotTables(2, 0)
	e.killDestMidFlight(failpoints.SplitAddSent, func() {})
}

func killDMMidMerge(e *env) {
	e.coldPieces()
	e.killDestMidFlight(failpoints.MergeSent, e.splitForMerge)
}

// killDestMidFlight holds the maintainer right after it sent a step of fp to another node,
// kills that node's process (its dispatcher manager with it), then releases the maintainer,
// which must finish or roll back the operator without the node. Splits and merges start only
// after a few load reports, so there is time to arm the failpoint once the maintainer is known.
func (e *env) killDestMidFlight(fp string, trigger func()) {
	e.t.Helper()
	e.startNodes()
	e.createChangefeed()
	maint, _ := e.maintainer()
	offset := e.logSize(maint)
	e.enable(maint, fp, `return("`+failpoints.HoldValue+`-not:`+maint+`")`)
	trigger()
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

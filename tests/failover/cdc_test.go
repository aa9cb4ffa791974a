package failover

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/failpoints"
)

// The etcd-dispatcher scenarios replicate cdcSource of the scenario's etcd cluster into a
// mirror under cdcMirror of the same cluster while `tidemark load` writes puts and deletes to
// the source, and check the run from the data itself (finish: cdcBeforeStop, cdcCheck).
//
// The source is three explicit ranges, one table each, that split the load's keys
// (cdcSource + 000..299) in thirds: every node has a span that the load keeps busy. (A split
// of one prefix table cuts the byte space evenly, and every load key would fall in one piece.)
// A mirror of explicit ranges holds each source key whole under cdcMirror.
const (
	cdcSource = "/src/"
	cdcMirror = "/dst/"
)

var cdcRanges = []string{cdcSource + "0.." + cdcSource + "1", cdcSource + "1.." + cdcSource + "2", cdcSource + "2.." + cdcSource + "3"}

// cdcScenarios are the etcd-dispatcher scenarios, 15-20 s each. The pause, which also covers a
// handoff's replay, is in the CI set; all three run with `make failover-test`, or
// FAILOVER_RUN=cdc-kill-worker,cdc-kill-maintainer,cdc-pause-worker-past-ttl.
func cdcScenarios() []scenario {
	return []scenario{
		{name: "cdc-kill-worker", nodes: 3, cdc: true, run: cdcKillWorker},
		{name: "cdc-kill-maintainer", nodes: 3, cdc: true, run: cdcKillMaintainer},
		{name: "cdc-pause-worker-past-ttl", ci: true, nodes: 3, cdc: true, run: cdcPauseWorkerPastTTL},
	}
}

// cdcRun is what an etcd-dispatcher scenario keeps for its checks.
type cdcRun struct {
	created int64 // the source revision before the changefeed: its start
	load    *process
	loadLog string
}

// ctl runs `tidemark ctl` against the scenario's cluster and returns its output and exit error.
func (e *env) ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{"ctl", "--etcd", strings.Join(e.etcd.endpoints(), ","), "--cluster", e.clusterID}, args...)
	out, err := exec.CommandContext(ctx, e.bin, full...).CombinedOutput()
	return string(out), err
}

// revision is the scenario etcd's current revision.
func (e *env) revision() int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := e.cli.Get(ctx, "health", clientv3.WithCountOnly())
	if err != nil {
		e.t.Fatalf("read the etcd revision: %v", err)
	}
	return resp.Header.Revision
}

// startCDC starts the nodes, creates changefeed cf1 with the etcd dispatcher through
// `ctl changefeed create`, waits for the placement and starts a load of events puts and
// deletes over 300 keys at rate per second.
func (e *env) startCDC(events, rate int) {
	e.t.Helper()
	e.startNodes()
	eps := strings.Join(e.etcd.endpoints(), ",")
	e.cdc = &cdcRun{created: e.revision(), loadLog: filepath.Join(e.dir, "load.log")}
	args := []string{"changefeed", "create", e.cf, "--dispatcher", "etcd", "--source-etcd", eps}
	for _, r := range cdcRanges {
		args = append(args, "--source-range", r)
	}
	if out, err := e.ctl(append(args, "--sink", "etcd", "--sink-etcd", eps, "--sink-prefix", cdcMirror)...); err != nil {
		e.t.Fatalf("ctl changefeed create: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	info, err := etcdutil.GetChangefeed(ctx, e.cli, e.keys, e.cf)
	cancel()
	if err != nil {
		e.t.Fatal(err)
	}
	e.info = info
	e.converge(30*time.Second, "initial placement")
	load, err := startProcess(e.bin, []string{"load", "--etcd", eps, "--prefix", cdcSource, "--keys", "300",
		"--events", fmt.Sprint(events), "--rate", fmt.Sprint(rate), "--delete-ratio", "0.3", "--workers", "4",
		"--seed", fmt.Sprint(uint64(e.seed)), "--progress", "1s"}, nil, e.cdc.loadLog)
	if err != nil {
		e.t.Fatalf("start tidemark load: %v", err)
	}
	e.cdc.load = load
	e.t.Cleanup(func() { load.signal(syscall.SIGKILL) })
	e.t.Logf("load: %d events at %d/s under %s; mirror under %s", events, rate, cdcSource, cdcMirror)
}

// cdcKillWorker: kill -9 of a worker (not the maintainer) during the load; its spans are
// re-placed and their new dispatchers replay from the checkpoint; it comes back and spans
// move to it again.
func cdcKillWorker(e *env) {
	e.startCDC(2000, 300)
	time.Sleep(2 * time.Second)
	maint, _ := e.maintainer()
	victim := e.other(maint)
	e.t.Logf("SIGKILL worker %s during the load", victim)
	e.kill(victim)
	_, took := e.converge(ttl+5*time.Second, "spans re-placed after SIGKILL of "+victim)
	e.t.Logf("%s's spans replicating elsewhere after %v", victim, took)
	time.Sleep(time.Second)
	e.start(victim)
}

// cdcKillMaintainer: kill -9 of the maintainer's node during the load.
func cdcKillMaintainer(e *env) {
	e.startCDC(2000, 300)
	time.Sleep(2 * time.Second)
	maint, epoch := e.maintainer()
	e.killMaintainerAndRecover(maint, epoch)
	time.Sleep(time.Second)
	e.start(maint)
}

// cdcPauseWorkerPastTTL: SIGSTOP a worker during the load for longer than its session TTL;
// its spans go to the others, whose dispatchers claim the mirror's fences. The worker is armed
// to close its dispatchers 3 s late once its session ended (server/dispatchers-close-late), so after SIGCONT its
// deposed dispatchers go on reading the load and try to write it: the target itself must
// refuse every such write (the node logs the refusal; finishCDC's fence check reads the
// target's history for any late write that landed).
func cdcPauseWorkerPastTTL(e *env) {
	e.startCDC(2000, 300)
	time.Sleep(2 * time.Second)
	maint, _ := e.maintainer()
	victim := e.other(maint)
	e.enable(victim, failpoints.DispatchersCloseLate, "sleep(3000)")
	offset := e.logSize(victim)
	e.t.Logf("SIGSTOP worker %s during the load", victim)
	e.pause(victim)
	_, took := e.converge(ttl+8*time.Second, "spans re-placed from paused "+victim)
	e.t.Logf("%s's spans replicating elsewhere %v after SIGSTOP (TTL %v)", victim, took, ttl)
	time.Sleep(time.Second) // the new owners write meanwhile
	e.resume(victim)
	if e.waitLog(victim, offset, 10*time.Second, "deposed at the sink") {
		line, _ := logLine(e.node(victim).logPath, offset, []string{"deposed at the sink"})
		e.t.Logf("the mirror refused %s's late write: %s", victim, line)
	} else {
		e.t.Errorf("%s resumed but no dispatcher of it was refused by the fence: the scenario tested no late write", victim)
	}
	// The failpoint stays on: the node is busy restarting its session, and the only loops
	// it delays later are those of its final SIGTERM.
}

// cdcBeforeStop waits for the load to end and the changefeed checkpoint to pass its last
// write, then runs `ctl diff` (0 differing keys). It returns the final checkpoint.
func (e *env) cdcBeforeStop() int64 {
	e.t.Helper()
	if !e.cdc.load.waitFor(60 * time.Second) {
		e.t.Errorf("tidemark load did not finish within 60s")
		e.cdc.load.signal(syscall.SIGKILL)
		e.cdc.load.wait()
	}
	if code := e.cdc.load.cmd.ProcessState.ExitCode(); code != 0 {
		b, _ := os.ReadFile(e.cdc.loadLog)
		e.t.Errorf("tidemark load exited %d:\n%s", code, tail(b, 1024))
	}
	end := e.revision()
	st, took, ok := e.poll(e.cf, 30*time.Second, func(st etcdutil.ChangefeedStatus) bool { return int64(st.CheckpointTs) >= end })
	if !ok {
		e.t.Errorf("I6 violated: checkpoint stuck at revision %d, below the load's end %d", st.CheckpointTs, end)
	} else {
		e.t.Logf("I6: checkpoint passed the load's last write (revision %d) %v after it ended", end, took.Round(10*time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	cp, err := etcdutil.GetCheckpoint(ctx, e.cli, e.keys, e.cf)
	cancel()
	if err != nil {
		e.t.Fatalf("final checkpoint: %v", err)
	}
	out, err := e.ctl("diff", e.cf)
	if err != nil || !strings.Contains(out, "0 differing keys") {
		e.t.Errorf("ctl diff %s after the load (checkpoint %d): %v\n%s", e.cf, cp, err, tail([]byte(out), 2048))
	} else {
		e.t.Logf("ctl diff: %s", strings.TrimSpace(out))
	}
	return int64(cp)
}

// cdcCheck checks the data over the whole run, once every node stopped: every source event in
// (start, final checkpoint] reached the mirror, per key in revision order with repeats only
// as replays (etcdcdc.CheckHistory), and every mirror write was fenced with no dispatcher
// writing after a newer owner of an overlapping span claimed it (etcdcdc.CheckFences).
func (e *env) cdcCheck(checkpoint int64) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root := etcdcdc.FenceRoot(e.clusterID, e.cf)
	hist, err := watchEvents(ctx, e.cli, e.cdc.created, cdcSource, cdcMirror, root+"fence/")
	if err != nil {
		e.t.Fatalf("read the run's history: %v", err)
	}
	var src []etcdcdc.Event // (start, final checkpoint]
	for _, ev := range hist[cdcSource] {
		if ev.Revision <= checkpoint {
			src = append(src, ev)
		}
	}
	dst, fences := hist[cdcMirror], hist[root+"fence/"]
	err = etcdcdc.CheckHistory(src, dst, func(k []byte) (string, bool) {
		return strings.CutPrefix(string(k), cdcMirror)
	})
	if err != nil {
		e.t.Errorf("I8 violated: %v", err)
	} else {
		e.t.Logf("I8: %d source events in (%d, %d], all in the mirror in order per key (%d mirror events, %d of them replays)",
			len(src), e.cdc.created, checkpoint, len(dst), replays(dst))
	}
	if err := etcdcdc.CheckFences(root, fences, dst); err != nil {
		e.t.Errorf("mirror fence violated: %v", err)
	} else {
		e.t.Logf("fence: %d fence writes, every mirror write fenced, none after a newer owner's claim", len(fences))
	}
	if len(src) < 1000 { // deletes of absent keys leave no event: about 85% of the load
		e.t.Errorf("only %d source events under the checkpoint: the load did not run", len(src))
	}
}

// replays counts the mirror's puts of a value the key already had before: values are unique
// per load write, so each is a replay after a handoff.
func replays(mirror []etcdcdc.Event) int {
	seen := map[string]bool{}
	n := 0
	for _, e := range mirror {
		k := string(e.Key) + "\x00" + string(e.Value)
		if !e.Delete && seen[k] {
			n++
		}
		seen[k] = true
	}
	return n
}

// historyEnd is the key cdcCheck writes once every node stopped, to know where the history ends.
const historyEnd = "/failover-history-end"

// watchEvents reads every event of the scenario's etcd above revision from, by prefix, up to
// the write of historyEnd. It writes that key itself and asks for no progress notification:
// the Debian etcd (3.4.23) sends RequestProgress's answer even to a watch still catching up,
// with the current revision, before the older events.
func watchEvents(ctx context.Context, cli *clientv3.Client, from int64, prefixes ...string) (map[string][]etcdcdc.Event, error) {
	if _, err := cli.Put(ctx, historyEnd, ""); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := map[string][]etcdcdc.Event{}
	for resp := range cli.Watch(wctx, "\x00", clientv3.WithFromKey(), clientv3.WithRev(from+1)) {
		if err := resp.Err(); err != nil {
			return nil, err
		}
		for _, ev := range resp.Events {
			if string(ev.Kv.Key) == historyEnd {
				return out, nil
			}
			for _, p := range prefixes {
				if strings.HasPrefix(string(ev.Kv.Key), p) {
					out[p] = append(out[p], etcdcdc.Event{Key: ev.Kv.Key, Value: ev.Kv.Value, Delete: ev.Type == clientv3.EventTypeDelete, Revision: ev.Kv.ModRevision})
				}
			}
		}
	}
	return nil, fmt.Errorf("the watch of the history ended before %s: %v", historyEnd, ctx.Err())
}

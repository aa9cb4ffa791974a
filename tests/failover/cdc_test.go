package failover

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/failpoints"
)

// Every scenario but the sim ones replicates key ranges of the scenario's own etcd cluster
// (under cdcSource; a separate source etcd where sourceEtcd is set) into a mirror under
// cdcMirror of the same cluster, or into file sinks,
// while `tidemark load` writes puts and deletes to the source, and finish checks the run
// from the data itself (cdccheck_test.go).
//
// Each table is one explicit key range, and the ranges split the load's keys evenly, so that
// the load keeps every table busy. (A split of one prefix table cuts the byte space evenly,
// and every load key would fall in one piece.) A mirror of explicit ranges holds each source
// key whole under cdcMirror.
const (
	cdcSource = "/src/"
	cdcMirror = "/dst/"
	// loadKeys: the load writes keys cdcSource+000..299, or one per table when there are more.
	loadKeys = 300
	// loadRate is the load's events per second: about 85% of them are source events (a
	// delete of an absent key is none). loadWorkers write concurrently.
	loadRate    = 300
	loadWorkers = 4
)

// cdcScenarios are the etcd-dispatcher scenarios that create their changefeed through
// `ctl changefeed create` (three source ranges) or test the data check itself, 15-20 s each.
func cdcScenarios() []scenario {
	return []scenario{
		{name: "cdc-kill-worker", nodes: 3, run: cdcKillWorker},
		{name: "cdc-kill-maintainer", nodes: 3, run: cdcKillMaintainer},
		{name: "cdc-pause-worker-past-ttl", ci: true, nodes: 3, run: cdcPauseWorkerPastTTL},
		{name: "cdc-mutation-skip-event", ci: true, nodes: 2, tables: 3, mutation: true, run: cdcMutationSkipEvent},
		{name: "cdc-mutation-skip-event-file", nodes: 2, tables: 3, mutation: true, fileSink: true, run: cdcMutationSkipEvent},
	}
}

// cdcRun is what an etcd-dispatcher scenario keeps for its checks.
type cdcRun struct {
	created int64 // the source revision before the changefeed: its start
	load    *process
	loadLog string
}

// cdcRanges are n explicit key ranges that split the load's keys evenly, and the number of
// keys the load writes. The last range is open to the end of cdcSource.
func cdcRanges(n int) ([]etcdutil.KeyRange, int) {
	keys := max(loadKeys, n)
	width := len(fmt.Sprint(keys - 1))
	key := func(i int) string { return fmt.Sprintf("%s%0*d", cdcSource, width, i) }
	out := make([]etcdutil.KeyRange, n)
	for i := range out {
		out[i] = etcdutil.KeyRange{Start: key(i * keys / n), End: key((i + 1) * keys / n)}
	}
	out[0].Start = cdcSource
	out[n-1].End = cdcSource[:len(cdcSource)-1] + string(cdcSource[len(cdcSource)-1]+1)
	return out, keys
}

// createCDC turns e.info into an etcd-dispatcher changefeed with one source key range per
// table, mirrored under cdcMirror (or into file sinks), creates it and starts the load. It
// does not wait for the placement: creating the changefeed is the trigger of some holds.
func (e *env) createCDC() {
	e.t.Helper()
	src, _ := e.dataEtcd()
	eps := src.endpoints()
	ranges, keys := cdcRanges(len(e.info.Tables))
	e.info.Dispatcher = etcdutil.EtcdDispatcher
	e.info.Source = &etcdutil.SourceConfig{Endpoints: eps, Ranges: ranges}
	e.info.Sink = &etcdutil.SinkConfig{Kind: etcdutil.SinkEtcd, Endpoints: eps, Prefix: cdcMirror}
	if e.sc.fileSink {
		e.info.Sink = &etcdutil.SinkConfig{Kind: etcdutil.SinkFile}
	}
	for i := range e.info.Tables {
		e.info.Tables[i].ID = int64(i + 1)
	}
	e.cdc = &cdcRun{created: e.revision(), loadLog: filepath.Join(e.dir, "load.log")}
	e.info.StartTs = uint64(e.cdc.created)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := etcdutil.CreateChangefeed(ctx, e.cli, e.keys, e.info); err != nil {
		e.t.Fatal(err)
	}
	e.startLoad(keys)
}

// startCDC starts the nodes and creates changefeed cf1 through `ctl changefeed create`, three
// source ranges mirrored under cdcMirror, then waits for the placement and starts the load.
func (e *env) startCDC() {
	e.t.Helper()
	e.startNodes()
	src, _ := e.dataEtcd()
	eps := strings.Join(src.endpoints(), ",")
	e.cdc = &cdcRun{created: e.revision(), loadLog: filepath.Join(e.dir, "load.log")}
	args := []string{"changefeed", "create", e.cf, "--dispatcher", "etcd", "--source-etcd", eps}
	ranges, keys := cdcRanges(3)
	for _, r := range ranges {
		args = append(args, "--source-range", r.Start+".."+r.End)
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
	e.startLoad(keys)
}

// startLoad starts `tidemark load` over keys keys under cdcSource at loadRate, with far more
// events than any scenario lasts: stopLoad (in finish) interrupts it.
func (e *env) startLoad(keys int) {
	e.t.Helper()
	src, _ := e.dataEtcd()
	load, err := startProcess(e.bin, []string{"load", "--etcd", strings.Join(src.endpoints(), ","),
		"--prefix", cdcSource, "--keys", fmt.Sprint(keys), "--events", fmt.Sprint(loadRate * 3600),
		"--rate", fmt.Sprint(loadRate), "--delete-ratio", "0.3", "--workers", fmt.Sprint(loadWorkers),
		"--seed", fmt.Sprint(uint64(e.seed)), "--progress", "1s"}, nil, e.cdc.loadLog)
	if err != nil {
		e.t.Fatalf("start tidemark load: %v", err)
	}
	e.cdc.load = load
	e.t.Cleanup(func() { load.signal(syscall.SIGKILL) })
	sink := "a mirror under " + cdcMirror
	if e.info.Sink != nil && e.info.Sink.Kind == etcdutil.SinkFile {
		sink = "file sinks"
	}
	e.t.Logf("load: %d events/s over %d keys under %s (%d tables); %s", loadRate, keys, cdcSource, len(e.info.Tables), sink)
}

// ctl runs `tidemark ctl` against the scenario's cluster and returns its output and exit error.
func (e *env) ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{"ctl", "--etcd", strings.Join(e.etcd.endpoints(), ","), "--cluster", e.clusterID}, args...)
	out, err := exec.CommandContext(ctx, e.bin, full...).CombinedOutput()
	return string(out), err
}

// dataEtcd is the etcd holding the source ranges and the mirror: the scenario's own source
// etcd (sourceEtcd), else the scheduler's.
func (e *env) dataEtcd() (*etcdCluster, *clientv3.Client) {
	if e.src != nil {
		return e.src, e.srcCli
	}
	return e.etcd, e.cli
}

// revision is the source etcd's current revision.
func (e *env) revision() int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, cli := e.dataEtcd()
	resp, err := cli.Get(ctx, "health", clientv3.WithCountOnly())
	if err != nil {
		e.t.Fatalf("read the etcd revision: %v", err)
	}
	return resp.Header.Revision
}

// cdcKillWorker: kill -9 of a worker (not the maintainer) during the load; its spans are
// re-placed and their new dispatchers replay from the checkpoint; it comes back and spans
// move to it again.
func cdcKillWorker(e *env) {
	e.startCDC()
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
	e.startCDC()
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
	e.startCDC()
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

// cdcMutationSkipEvent proves the data check can fail: three tables run on n1 and n2 under the
// load, then n3 joins with the mutation failpoint skip-first-event on, and the balance
// scheduler moves a span to it. A move is a clean handoff (the origin's final checkpoint is
// all it wrote), so the first event n3's dispatcher drops is lost for good although its
// checkpoint passes it. finish must find the loss (cdcCheck, mutation).
func cdcMutationSkipEvent(e *env) {
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement on 2 nodes")
	e.start("n3", "GO_FAILPOINTS="+failpoints.MustPath(failpoints.SkipFirstEvent)+"=return(true)")
	e.t.Logf("n3 started with %s on", failpoints.SkipFirstEvent)
	e.converge(30*time.Second, "a span moved to n3")
	if !e.waitLog("n3", 0, 10*time.Second, "skip-first-event: event dropped") {
		e.t.Fatalf("n3 took a span but its dispatcher dropped no event: the mutation never happened")
	}
}

package failover

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/ts"
)

var (
	flagRun      = flag.String("failover.run", "", "comma-separated scenario names to run (default: the CI set; TIDEMARK_FAILOVER=all or -failover.all: every scenario)")
	flagAll      = flag.Bool("failover.all", false, "run every scenario, not only the CI set")
	flagSeed     = flag.Int64("failover.seed", 0, "seed of the random choices (0: from the clock, logged)")
	flagRuns     = flag.Int("failover.runs", 1, "run each selected scenario this many times in a row")
	flagDuration = flag.Duration("failover.duration", 0, "long mode: how long random-chaos injects faults (default 25s)")
)

// scenario is one chaos test: a typed value run by name.
type scenario struct {
	name string
	// ci marks the representative set that plain `go test ./...` runs.
	ci     bool
	nodes  int // started before run; run may start more
	tables int
	// needs names a file that must exist for the scenario to mean anything (an operator that
	// another change adds); the scenario is skipped with that reason until it does.
	needs string
	// knownBug names a bug the scenario exposes and that is not fixed yet: the scenario is
	// skipped unless asked for by name (-failover.run), so the suite stays a regression gate.
	knownBug string
	// ttl is the nodes' session TTL; 0 means the suite's default ttl.
	ttl time.Duration
	// sim: the changefeed runs the simulated dispatcher and finish checks its sink records
	// (I1/I2 on ts ranges). Every other scenario runs the etcd dispatcher under a load writing
	// to the source (cdc_test.go, createCDC) and finish checks the replicated data (cdccheck_test.go).
	sim bool
	// fileSink: the etcd dispatcher writes JSON-lines files instead of the etcd mirror.
	fileSink bool
	// sourceEtcd: the source and its mirror live in an etcd of their own (one member), apart
	// from the scheduler's, as in production; otherwise they are key ranges of the
	// scheduler's etcd. Faults on e.etcd then leave the source serving.
	sourceEtcd bool
	// mutation: a node runs with the skip-first-event failpoint, and the data check must fail
	// naming the event it dropped (the suite proves it can fail).
	mutation bool
	run      func(e *env)
}

// env is what a running scenario works with.
type env struct {
	*cluster
	sc      scenario
	rng     *rand.Rand
	seed    int64
	cf      string
	info    etcdutil.ChangefeedInfo
	sampler *opSampler
	cdc     *cdcRun // set by createCDC or startCDC
	// src and srcCli are the source etcd of a sourceEtcd scenario; nil otherwise (the
	// source is e.etcd: use dataEtcd).
	src    *etcdCluster
	srcCli *clientv3.Client
	// after are checks that run once the invariants held: they tell whether the scenario
	// exercised what it meant to (a failure of an invariant says more than they do).
	after []func()
}

// ttl is the session TTL of every scenario that names none: short, so that failovers are quick.
const ttl = 2 * time.Second

func selected(t *testing.T) []scenario {
	all := scenarios()
	want := map[string]bool{}
	if *flagRun != "" {
		for _, n := range strings.Split(*flagRun, ",") {
			want[strings.TrimSpace(n)] = true
		}
	}
	every := *flagAll || os.Getenv("TIDEMARK_FAILOVER") == "all" || *flagDuration > 0
	var out []scenario
	named := len(want) > 0
	for _, sc := range all {
		switch {
		case named && want[sc.name]:
			out = append(out, sc)
			delete(want, sc.name)
		case !named && (every || sc.ci):
			out = append(out, sc)
		}
	}
	for n := range want {
		t.Fatalf("no scenario named %q", n)
	}
	return out
}

// TestScenarios runs the selected scenarios, each -failover.runs times.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-member etcd cluster and tidemark server processes")
	}
	for _, sc := range selected(t) {
		for run := 1; run <= *flagRuns; run++ {
			name := sc.name
			if *flagRuns > 1 {
				name = fmt.Sprintf("%s/run%d", sc.name, run)
			}
			t.Run(name, func(t *testing.T) { runScenario(t, sc) })
		}
	}
}

func runScenario(t *testing.T, sc scenario) {
	if sc.knownBug != "" && !strings.Contains(","+*flagRun+",", ","+sc.name+",") {
		t.Skipf("known bug, run it with -failover.run=%s: %s", sc.name, sc.knownBug)
	}
	if sc.needs != "" {
		if _, err := os.Stat(filepath.Join(moduleRoot(t), sc.needs)); err != nil {
			t.Skipf("%s does not exist yet: this scenario needs it", sc.needs)
		}
	}
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("scenario %s seed %d (rerun with -failover.run=%s -failover.seed=%d)", sc.name, seed, sc.name, seed)
	start := time.Now()
	sessionTTL := ttl
	if sc.ttl > 0 {
		sessionTTL = sc.ttl
	}
	e := &env{cluster: newCluster(t, sessionTTL), sc: sc, rng: rand.New(rand.NewSource(seed)), seed: seed, cf: "cf1"}
	e.info = etcdutil.ChangefeedInfo{ID: e.cf, StartTs: ts.FromTime(time.Now())}
	for i := 1; i <= sc.tables; i++ {
		e.info.Tables = append(e.info.Tables, etcdutil.TableInfo{ID: int64(i), Load: 5})
	}
	if sc.sourceEtcd && !sc.sim {
		dir := filepath.Join(e.dir, "source")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		e.src = startEtcdCluster(t, e.etcd.bin, dir, 1)
		e.srcCli = e.src.client()
	}
	for i := 1; i <= 5; i++ {
		e.define(fmt.Sprintf("n%d", i))
	}
	e.sampler = e.startOpSampler(e.cf)
	sc.run(e)
	e.finish()
	t.Logf("RESULT scenario=%s seed=%d took=%v", sc.name, seed, time.Since(start).Round(100*time.Millisecond))
}

// startNodes starts the given nodes, or n1..n<sc.nodes> when none are named.
func (e *env) startNodes(ids ...string) {
	if len(ids) == 0 {
		for i := 1; i <= e.sc.nodes; i++ {
			ids = append(ids, fmt.Sprintf("n%d", i))
		}
	}
	for _, id := range ids {
		e.start(id)
	}
}

// createChangefeed creates changefeed cf1 from e.info: with the etcd dispatcher, one source
// key range per table and a load writing to them (createCDC), unless the scenario is sim.
func (e *env) createChangefeed() {
	e.t.Helper()
	if !e.sc.sim {
		e.createCDC()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := etcdutil.CreateChangefeed(ctx, e.cli, e.keys, e.info); err != nil {
		e.t.Fatal(err)
	}
}

// live are the nodes running and not paused.
func (e *env) live() []string {
	var out []string
	for _, id := range e.ids() {
		if e.alive(id) && !e.nodes[id].paused {
			out = append(out, id)
		}
	}
	return out
}

// converge waits for I6 over the live nodes and returns the status and how long it took.
func (e *env) converge(timeout time.Duration, what string) (etcdutil.ChangefeedStatus, time.Duration) {
	e.t.Helper()
	live := e.live()
	return e.waitFor(e.cf, timeout, what+": converged on "+strings.Join(live, ","), converged(live))
}

// maintainer is the node that holds the changefeed's election key now.
func (e *env) maintainer() (string, uint64) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if l, err := e.leader(e.cf); err == nil && l.Node != "" {
			return l.Node, l.Epoch
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatal("no maintainer elected within 20s")
	return "", 0
}

// other picks a live node other than the given ones, at random.
func (e *env) other(not ...string) string {
	e.t.Helper()
	skip := setOf(not)
	var c []string
	for _, id := range e.live() {
		if !skip[id] {
			c = append(c, id)
		}
	}
	if len(c) == 0 {
		e.t.Fatalf("no live node other than %v", not)
	}
	return c[e.rng.Intn(len(c))]
}

// finish brings every node back, waits for convergence and a checkpoint past the end of the
// faults, stops everything and checks I1-I5 over the whole run (with the etcd dispatcher, the
// replicated data instead of the simulated sinks: cdcBeforeStop, cdcCheck: I8 and the fences).
func (e *env) finish() {
	e.t.Helper()
	for _, id := range e.ids() {
		if n := e.nodes[id]; n.proc != nil && n.paused {
			e.resume(id)
		}
	}
	// Not reaching convergence is reported, and the other invariants are still checked: they
	// usually say why.
	live := e.live()
	var cdcCheckpoint int64
	if st, took, ok := e.poll(e.cf, 60*time.Second, converged(live)); !ok {
		e.t.Errorf("I6 violated: not converged on %v within 60s after the faults ended; last status %+v", live, st)
	} else if e.cdc != nil {
		e.t.Logf("I6: converged %v after the faults ended", took.Round(10*time.Millisecond))
	} else {
		faultsEnd := ts.FromTime(time.Now())
		if st, _, ok := e.poll(e.cf, 30*time.Second, func(st etcdutil.ChangefeedStatus) bool { return st.CheckpointTs > faultsEnd }); !ok {
			e.t.Errorf("I6 violated: checkpoint stuck at %d, below the end of the faults %d", st.CheckpointTs, faultsEnd)
		} else {
			e.t.Logf("I6: converged %v after the faults ended; checkpoint passed them", took.Round(10*time.Millisecond))
		}
	}
	if e.cdc != nil {
		cdcCheckpoint = e.cdcBeforeStop()
	}
	samples, ops, opErr := e.sampler.finish()
	e.stopAll()
	if e.cdc != nil {
		e.cdcCheck(cdcCheckpoint)
	} else if report, err := e.verifySinks(e.cf, e.info.StartTs, e.tableIDs()); err != nil {
		e.t.Errorf("I1/I2 violated: %v", err)
	} else {
		e.t.Logf("I1/I2: %d sink records over %d spans: no gap, no overlap up to ts %d (%d repeats)",
			report.Records, report.Spans, report.Bound, len(report.Repeats))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if versions, err := checkEtcdHistory(ctx, e.cli, e.keys, e.cf); err != nil {
		e.t.Errorf("etcd history: %v", err)
	} else {
		e.t.Logf("I3/I5: %d checkpoint and status versions in etcd, never backwards", versions)
	}
	if opErr != nil {
		e.t.Errorf("%v", opErr)
	} else {
		e.t.Logf("I4: %d samples of the maintainer's operators (%d listed), never two on one span", samples, ops)
	}
	if !e.t.Failed() {
		for _, f := range e.after {
			f()
		}
	}
}

func (e *env) tableIDs() []int64 {
	out := make([]int64, 0, len(e.info.Tables))
	for _, tb := range e.info.Tables {
		out = append(out, tb.ID)
	}
	return out
}

package sim

import (
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	seeds     = flag.Int("seeds", 0, "how many seeds TestSeeds runs (0: the CI range)")
	firstSeed = flag.Int64("first-seed", 1, "the first seed TestSeeds runs")
	traceLen  = flag.Int("events", 0, "how many recent events a failure prints (0: the default)")
	showFresh = flag.Bool("show-fresh-seed", false, "TestShowFreshSeed prints where TestFreshSeeds starts")
)

// ciSeeds is how many seeds `go test ./tests/sim` runs in each of its two ranges.
const ciSeeds = 2000

// TestSeeds runs consecutive seeds with every fault kind on, split over GOMAXPROCS parallel
// workers. A failure prints the seed and the trace; rerun one with -first-seed=<seed> -seeds=1.
func TestSeeds(t *testing.T) {
	n := *seeds
	if n == 0 {
		n = ciSeeds
		if testing.Short() {
			n = 200
		}
	}
	runSeeds(t, *firstSeed, n)
}

// TestFreshSeeds runs ciSeeds seeds that no earlier commit ran: the range starts at a seed
// derived from the commit under test (TIDEMARK_SIM_FRESH_SEED overrides it), so every CI run
// explores new ground while any failure still names a seed that replays exactly. It does not
// run when TestSeeds is given its own range (make sim).
func TestFreshSeeds(t *testing.T) {
	if *seeds != 0 {
		t.Skip("explicit -seeds: make sim runs its own range")
	}
	first, origin, err := freshFirstSeed()
	if err != nil {
		t.Skipf("no fresh seeds: %v", err)
	}
	n := ciSeeds
	if testing.Short() {
		n = 200
	}
	t.Logf("fresh seeds: %d from %d (%s); replay one with: make sim FIRST_SEED=<seed> SEEDS=1", n, first, origin)
	runSeeds(t, first, n)
}

// TestShowFreshSeed prints the fresh range (make sim-fresh-seed; CI shows it before the tests).
func TestShowFreshSeed(t *testing.T) {
	if !*showFresh {
		t.Skip("run with -show-fresh-seed")
	}
	first, origin, err := freshFirstSeed()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("fresh simulator seeds: %d from %d (%s); replay one with: make sim FIRST_SEED=<seed> SEEDS=1\n",
		ciSeeds, first, origin)
}

// freshFirstSeed derives the first fresh seed from the commit: far above the fixed range, and
// below 2^40 so seeds stay short to type.
func freshFirstSeed() (int64, string, error) {
	if v := os.Getenv("TIDEMARK_SIM_FRESH_SEED"); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil || s < 1 {
			return 0, "", fmt.Errorf("TIDEMARK_SIM_FRESH_SEED=%q is not a positive integer", v)
		}
		return s, "TIDEMARK_SIM_FRESH_SEED", nil
	}
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return 0, "", fmt.Errorf("git rev-parse HEAD: %w (set TIDEMARK_SIM_FRESH_SEED)", err)
	}
	commit := strings.TrimSpace(string(out))
	h := fnv.New64a()
	h.Write([]byte(commit))
	const floor = 1_000_000
	return floor + int64(h.Sum64()%(1<<40)), "from commit " + commit, nil
}

// runSeeds runs n seeds from first over GOMAXPROCS workers, stopping a worker after three
// failing seeds.
func runSeeds(t *testing.T, first int64, n int) {
	workers := runtime.GOMAXPROCS(0)
	var mu sync.Mutex
	total := map[string]int{}
	t.Cleanup(func() { t.Logf("%d seeds from %d; events: %v", n, first, total) })
	for w := 0; w < workers; w++ {
		t.Run(fmt.Sprintf("worker%d", w), func(t *testing.T) {
			t.Parallel()
			failed := 0
			for s := first + int64(w); s < first+int64(n); s += int64(workers) {
				c := New(Config{Seed: s, Faults: true, Redo: s%3 == 0, SplitMerge: s%2 == 0,
					MakeBeforeBreak: s%4 < 2, TraceLen: *traceLen})
				err := c.Run()
				mu.Lock()
				for k, v := range c.Counters() {
					total[k] += v
				}
				mu.Unlock()
				if err != nil {
					failed++
					t.Errorf("%v", err)
					if failed >= 3 {
						t.Fatalf("stopping after %d failing seeds", failed)
					}
				}
			}
		})
	}
}

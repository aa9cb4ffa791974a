package sim

import (
	"flag"
	"fmt"
	"runtime"
	"sync"
	"testing"
)

var (
	seeds     = flag.Int("seeds", 0, "how many seeds TestSeeds runs (0: the CI range)")
	firstSeed = flag.Int64("first-seed", 1, "the first seed TestSeeds runs")
	traceLen  = flag.Int("events", 0, "how many recent events a failure prints (0: the default)")
)

// ciSeeds is the seed range `go test ./tests/sim` runs.
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
	workers := runtime.GOMAXPROCS(0)
	var mu sync.Mutex
	total := map[string]int{}
	t.Cleanup(func() { t.Logf("%d seeds from %d; events: %v", n, *firstSeed, total) })
	for w := 0; w < workers; w++ {
		t.Run(fmt.Sprintf("worker%d", w), func(t *testing.T) {
			t.Parallel()
			failed := 0
			for s := *firstSeed + int64(w); s < *firstSeed+int64(n); s += int64(workers) {
				c := New(Config{Seed: s, Faults: true, Redo: s%3 == 0, SplitMerge: s%2 == 0, TraceLen: *traceLen})
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

package etcdcdc

import (
	"testing"
	"time"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// TestProgressIntervalGrowsWithWatches: a node with few watches asks for progress every
// ProgressInterval; one with thousands asks less often, so the notifications it is sent stay
// near 3,333 a second whatever its size.
func TestProgressIntervalGrowsWithWatches(t *testing.T) {
	for _, c := range []struct {
		watches int
		want    time.Duration
	}{
		{0, DefaultProgressInterval},
		{100, DefaultProgressInterval},
		{666, DefaultProgressInterval},
		{667, 200100 * time.Microsecond},
		{3334, 1000200 * time.Microsecond},
		{10000, 3 * time.Second},
	} {
		if got := progressInterval(DefaultProgressInterval, c.watches, false); got != c.want {
			t.Errorf("%d watches: every %v, want %v", c.watches, got, c.want)
		}
	}
}

// TestWatchesSpreadOverStreams: more dispatchers than streams use every stream, and an idle
// dispatcher on any of them advances (progress is asked on each stream, not just one).
func TestWatchesSpreadOverStreams(t *testing.T) {
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	start := rev(t, cli)
	sink, err := NewFileSink(t.TempDir(), "cf", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	f := newTestFactory(t, etcd.ClientURLs(), &etcdutil.SourceConfig{Prefix: "/src/"}, sink)
	var ds []*Dispatcher
	for i, s := range splitTable(t, watchStreams+4) {
		ds = append(ds, newTestDispatcher(t, f, did(1, uint64(i+1)), s, start))
	}
	idle := put(t, cli, "/elsewhere", "x")
	for _, d := range ds {
		waitCheckpoint(t, d, idle)
	}
	// Every watch is open once its dispatcher advanced.
	if got := f.streams.opened(); got != watchStreams {
		t.Fatalf("%d dispatchers opened %d streams, want %d", len(ds), got, watchStreams)
	}
}

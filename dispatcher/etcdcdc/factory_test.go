package etcdcdc

import (
	"testing"
	"time"
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
		if got := progressInterval(DefaultProgressInterval, c.watches); got != c.want {
			t.Errorf("%d watches: every %v, want %v", c.watches, got, c.want)
		}
	}
}

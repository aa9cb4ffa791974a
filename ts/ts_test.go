package ts

import (
	"testing"
	"time"
)

func TestComposeRoundTrip(t *testing.T) {
	cases := []struct{ ms, logical int64 }{{0, 0}, {1, 1}, {1_700_000_000_000, MaxLogical}, {42, 7}}
	for _, c := range cases {
		v := Compose(c.ms, c.logical)
		if got := PhysicalMs(v); got != c.ms {
			t.Errorf("PhysicalMs(Compose(%d,%d)) = %d", c.ms, c.logical, got)
		}
		if got := int64(v & MaxLogical); got != c.logical {
			t.Errorf("logical of Compose(%d,%d) = %d", c.ms, c.logical, got)
		}
	}
}

func TestOrderFollowsTime(t *testing.T) {
	a := FromTime(time.UnixMilli(1000))
	b := Compose(1000, 5)
	c := FromTime(time.UnixMilli(1001))
	if !(a < b && b < c) {
		t.Fatalf("ts order broken: %d %d %d", a, b, c)
	}
}

func TestLag(t *testing.T) {
	now := time.UnixMilli(5000)
	if got := Lag(FromTime(time.UnixMilli(3000)), now); got != 2*time.Second {
		t.Fatalf("Lag = %v, want 2s", got)
	}
	if got := Lag(FromTime(time.UnixMilli(9000)), now); got != 0 {
		t.Fatalf("Lag of a future ts = %v, want 0", got)
	}
}

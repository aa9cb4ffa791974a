package failpoints

import (
	"testing"
	"time"
)

func TestForPeer(t *testing.T) {
	for _, tc := range []struct {
		v    any
		peer string
		want bool
	}{
		{true, "n1", true}, {false, "n1", false}, {"n1,n2", "n2", true}, {"n1, n2", "n3", false},
		{"*", "n9", true}, {"", "n1", false}, {42, "n1", false}, {nil, "n1", false},
	} {
		if got := ForPeer(tc.v, tc.peer); got != tc.want {
			t.Errorf("ForPeer(%v, %s) = %v, want %v", tc.v, tc.peer, got, tc.want)
		}
	}
}

func TestDelayFor(t *testing.T) {
	for _, tc := range []struct {
		v    any
		peer string
		want time.Duration
	}{
		{80, "n1", 80 * time.Millisecond}, {-5, "n1", 0}, {"n2:30,*:10", "n2", 30 * time.Millisecond},
		{"n2:30,*:10", "n1", 10 * time.Millisecond}, {"n2:30", "n1", 0}, {"n2:x,n2", "n2", 0},
		{true, "n1", 0}, {nil, "n1", 0},
	} {
		if got := DelayFor(tc.v, tc.peer); got != tc.want {
			t.Errorf("DelayFor(%v, %s) = %v, want %v", tc.v, tc.peer, got, tc.want)
		}
	}
}

package server

import (
	"testing"
	"time"
)

func TestSessionBackoffResetsAfterHealthySession(t *testing.T) {
	const ttl = 5 * time.Second
	b := newSessionBackoff(ttl)
	ms := time.Millisecond
	steps := []struct {
		lived time.Duration
		want  time.Duration
	}{
		{0, 200 * ms}, // etcd unreachable: the session never started
		{0, 400 * ms},
		{0, 800 * ms},
		{0, time.Second}, // capped at max(1 s, TTL/5)
		{0, time.Second},
		{ttl + ms, 200 * ms}, // a healthy session: the next loss starts over
		{0, 400 * ms},
		{ttl, 800 * ms}, // not longer than the TTL: still the same incident
		{3 * ttl, 200 * ms},
	}
	for i, st := range steps {
		if got := b.next(st.lived); got != st.want {
			t.Fatalf("step %d: after a session of %v the wait is %v, want %v", i, st.lived, got, st.want)
		}
	}
}

func TestTeardownTimeoutFollowsTTL(t *testing.T) {
	for _, c := range []struct{ ttl, want time.Duration }{
		{time.Second, 200 * time.Millisecond},
		{2 * time.Second, 400 * time.Millisecond},
		{5 * time.Second, time.Second},
		{time.Minute, 2 * time.Second},
	} {
		if got := teardownTimeout(c.ttl); got != c.want {
			t.Errorf("teardownTimeout(%v) = %v, want %v", c.ttl, got, c.want)
		}
	}
}

package messaging

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

const testCluster = "test-cluster"

// waitTimeout bounds every wait on real sockets; tests normally finish far sooner.
const waitTimeout = 10 * time.Second

// collector is a Handler that records what arrives and lets a test wait for it.
type collector struct {
	mu     sync.Mutex
	envs   []*heartbeatpb.Envelope
	notify chan struct{}
}

func newCollector() *collector { return &collector{notify: make(chan struct{}, 1)} }

func (c *collector) handle(env *heartbeatpb.Envelope) {
	c.mu.Lock()
	c.envs = append(c.envs, env)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *collector) got() []*heartbeatpb.Envelope {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*heartbeatpb.Envelope(nil), c.envs...)
}

// waitCount waits until at least n envelopes arrived and returns them all.
func (c *collector) waitCount(t *testing.T, n int) []*heartbeatpb.Envelope {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		if envs := c.got(); len(envs) >= n {
			return envs
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %d envelopes, got %d", n, len(c.got()))
		}
	}
}

func testEnv(from, to string, seq uint64) *heartbeatpb.Envelope {
	return &heartbeatpb.Envelope{
		ClusterId: testCluster, Changefeed: "cf", From: from, To: to, Epoch: 7, Incarnation: 1, Seq: seq,
		Body: &heartbeatpb.Envelope_HeartbeatResponse{HeartbeatResponse: &heartbeatpb.HeartBeatResponse{CheckpointTs: seq}},
	}
}

// checkOrdered asserts that envs holds exactly want envelopes from each sender in want, with
// seq 1..n in order per sender.
func checkOrdered(t *testing.T, envs []*heartbeatpb.Envelope, want map[string]int) {
	t.Helper()
	next := map[string]uint64{}
	for _, env := range envs {
		next[env.From]++
		if env.Seq != next[env.From] {
			t.Fatalf("from %s: got seq %d, want %d", env.From, env.Seq, next[env.From])
		}
	}
	for from, n := range want {
		if next[from] != uint64(n) {
			t.Fatalf("from %s: got %d envelopes, want %d", from, next[from], n)
		}
	}
	if len(next) != len(want) {
		t.Fatalf("senders %v, want %v", next, want)
	}
}

// waitUntil polls cond with a deadline; only for edge tests on real sockets.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkNoLeak fails when, after a bounded wait, more goroutines run than before the test.
func checkNoLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutine leak: %d before, %d after\n%s", before, n, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func seqName(prefix string, i int) string { return fmt.Sprintf("%s%d", prefix, i) }

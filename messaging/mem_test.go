package messaging

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

func waitIdle(t *testing.T, n *MemNetwork) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := n.WaitIdle(ctx); err != nil {
		t.Fatalf("network never went idle: %v", err)
	}
}

func TestMemExchangeInOrderAndCopied(t *testing.T) {
	before := runtime.NumGoroutine()
	net := NewMemNetwork()
	ids := []string{"a", "b", "c"}
	cols := map[string]*collector{}
	trs := map[string]Transport{}
	for _, id := range ids {
		cols[id] = newCollector()
		trs[id] = net.Join(id, cols[id].handle)
	}
	sent := map[string][]*heartbeatpb.Envelope{}
	for seq := uint64(1); seq <= 500; seq++ {
		for _, from := range ids {
			for _, to := range ids {
				env := testEnv(from, to, seq)
				sent[to] = append(sent[to], env)
				trs[from].Send(env)
			}
		}
	}
	waitIdle(t, net)
	for _, id := range ids {
		got := cols[id].got()
		checkOrdered(t, got, map[string]int{"a": 500, "b": 500, "c": 500})
		if got[0] == sent[id][0] {
			t.Fatal("receiver shares the sender's envelope")
		}
		if st := trs[id].Stats(); st.Sent != 1500 || st.Received != 1500 || st.Dropped.Total() != 0 {
			t.Fatalf("%s: %+v", id, st)
		}
	}
	for _, tr := range trs {
		tr.Close()
		tr.Close()
	}
	checkNoLeak(t, before)
}

func TestMemFaults(t *testing.T) {
	net := NewMemNetwork()
	ca, cb, cc := newCollector(), newCollector(), newCollector()
	a, b, c := net.Join("a", ca.handle), net.Join("b", cb.handle), net.Join("c", cc.handle)
	defer a.Close()
	defer b.Close()
	defer c.Close()

	net.SetPartition("b", "a", true)
	net.SetDropTo("c", true)
	a.Send(testEnv("a", "b", 1))
	b.Send(testEnv("b", "a", 1))
	a.Send(testEnv("a", "c", 1))
	b.Send(testEnv("b", "c", 1))
	c.Send(testEnv("c", "a", 1)) // c can still talk
	c.Send(testEnv("c", "c", 1)) // and to itself
	a.Send(testEnv("a", "x", 1)) // unknown node
	waitIdle(t, net)
	if len(cb.got()) != 0 || len(cc.got()) != 1 || len(ca.got()) != 1 {
		t.Fatalf("got a=%d b=%d c=%d", len(ca.got()), len(cb.got()), len(cc.got()))
	}
	if st := a.Stats(); st.Dropped.Fault != 2 || st.Dropped.NoPeer != 1 {
		t.Fatalf("a: %+v", st.Dropped)
	}

	net.SetPartition("a", "b", false)
	a.Send(testEnv("a", "b", 2))
	net.HealAll()
	b.Send(testEnv("b", "c", 2))
	waitIdle(t, net)
	if len(cb.got()) != 1 || len(cc.got()) != 2 {
		t.Fatalf("after healing: b=%d c=%d", len(cb.got()), len(cc.got()))
	}
}

func TestMemRejoinReplacesNode(t *testing.T) {
	net := NewMemNetwork()
	ca, old, fresh := newCollector(), newCollector(), newCollector()
	a := net.Join("a", ca.handle)
	defer a.Close()
	b1 := net.Join("b", old.handle)
	b2 := net.Join("b", fresh.handle) // restart: the old transport is closed
	defer b2.Close()
	b1.Send(testEnv("b", "a", 1))
	a.Send(testEnv("a", "b", 1))
	waitIdle(t, net)
	if len(old.got()) != 0 || len(fresh.got()) != 1 || len(ca.got()) != 0 {
		t.Fatalf("old=%d fresh=%d a=%d", len(old.got()), len(fresh.got()), len(ca.got()))
	}
	if st := b1.Stats(); st.Dropped.Closed != 1 {
		t.Fatalf("closed node: %+v", st.Dropped)
	}
	b2.Send(nil)
	b2.Send(testEnv("a", "b", 1)) // wrong sender
	if st := b2.Stats(); st.Dropped.Invalid != 2 {
		t.Fatalf("invalid: %+v", st.Dropped)
	}
}

func TestMemSendNeverBlocksOnSlowHandler(t *testing.T) {
	net := NewMemNetwork()
	release := make(chan struct{})
	slow := net.Join("slow", func(*heartbeatpb.Envelope) { <-release })
	a := net.Join("a", nil)
	done := make(chan struct{})
	go func() {
		for seq := uint64(1); seq <= 2*DefaultQueueSize; seq++ {
			a.Send(testEnv("a", "slow", seq))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Send blocked behind a slow handler")
	}
	if st := a.Stats(); st.Dropped.QueueFull == 0 {
		t.Fatalf("expected queue_full drops: %+v", st.Dropped)
	}
	close(release)
	waitIdle(t, net)
	a.Close()
	slow.Close()
}

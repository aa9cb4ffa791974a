package etcdutil

import (
	"context"
	"errors"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// campaignAsync runs Campaign in a goroutine and delivers its result.
func campaignAsync(ctx context.Context, t *testing.T, cli *clientv3.Client, cf, node string) <-chan *Leadership {
	t.Helper()
	sess := newSession(t, cli, 5)
	out := make(chan *Leadership, 1)
	go func() {
		l, err := Campaign(ctx, sess, testKeys, cf, node)
		if err != nil {
			t.Errorf("campaign of %s: %v", node, err)
			close(out)
			return
		}
		out <- l
	}()
	return out
}

func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func TestCampaignResignHandsOver(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	leaders, err := WatchLeader(ctx, cli, testKeys, "cf1")
	if err != nil {
		t.Fatalf("WatchLeader: %v", err)
	}
	if first := recv(t, leaders, "no leader yet"); first != (Leader{}) {
		t.Fatalf("first leader = %+v, want zero", first)
	}

	a, err := Campaign(ctx, newSession(t, cli, 5), testKeys, "cf1", "n1")
	if err != nil {
		t.Fatalf("campaign n1: %v", err)
	}
	if a.Epoch == 0 || !strings.HasPrefix(a.Key, testKeys.ElectionPrefix("cf1")+"/") {
		t.Fatalf("leadership = %+v", a)
	}
	if got := recv(t, leaders, "n1 leads"); got != (Leader{Node: "n1", Epoch: a.Epoch}) {
		t.Fatalf("leader = %+v, want n1 at %d", got, a.Epoch)
	}

	bch := campaignAsync(ctx, t, cli, "cf1", "n2")
	select {
	case <-bch:
		t.Fatal("n2 won while n1 leads")
	case <-time.After(300 * time.Millisecond):
	}
	if err := a.Resign(ctx); err != nil {
		t.Fatalf("resign: %v", err)
	}
	if !closedWithin(a.Done(), time.Second) {
		t.Fatal("Done not closed after Resign")
	}
	b := recv(t, bch, "n2 wins")
	if b == nil || b.Epoch <= a.Epoch {
		t.Fatalf("n2 leadership = %+v, want epoch above %d", b, a.Epoch)
	}
	got := recvUntil(t, leaders, "n2 leads", func(l Leader) bool { return l.Node == "n2" })
	if got.Epoch != b.Epoch {
		t.Fatalf("watched epoch %d, want %d", got.Epoch, b.Epoch)
	}
	if ld, err := GetLeader(ctx, cli, testKeys, "cf1"); err != nil || ld != got {
		t.Fatalf("GetLeader = %+v, %v; want %+v", ld, err, got)
	}
	if err := a.Resign(ctx); err != nil {
		t.Fatalf("second resign: %v", err)
	}
}

func TestDeposedLeaderIsFenced(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	sessA := newSession(t, cli, 1)
	a, err := Campaign(ctx, sessA, testKeys, "cf1", "n1")
	if err != nil {
		t.Fatalf("campaign n1: %v", err)
	}
	if _, err := a.AdvanceCheckpoint(ctx, 100); err != nil {
		t.Fatalf("advance by leader: %v", err)
	}
	// n1 hangs: its lease runs out, n2 takes over.
	sessA.Orphan()
	if !closedWithin(a.Done(), waitTimeout) {
		t.Fatal("Done not closed after the lease was lost")
	}
	b, err := Campaign(ctx, newSession(t, cli, 5), testKeys, "cf1", "n2")
	if err != nil {
		t.Fatalf("campaign n2: %v", err)
	}
	if b.Epoch <= a.Epoch {
		t.Fatalf("epoch %d after %d", b.Epoch, a.Epoch)
	}
	if err := a.PublishStatus(ctx, ChangefeedStatus{CheckpointTs: 1}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("PublishStatus by deposed = %v, want ErrNotLeader", err)
	}
	for _, ts := range []uint64{50, 100, 500} {
		if _, err := a.AdvanceCheckpoint(ctx, ts); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("AdvanceCheckpoint(%d) by deposed = %v, want ErrNotLeader", ts, err)
		}
	}
	if cp, err := GetCheckpoint(ctx, cli, testKeys, "cf1"); err != nil || cp != 100 {
		t.Fatalf("checkpoint = %d, %v; want 100", cp, err)
	}
	if _, err := GetStatus(ctx, cli, testKeys, "cf1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("status = %v, want ErrNotFound", err)
	}
	// The new leader continues from the persisted value and cannot lower it either.
	if cp, err := b.AdvanceCheckpoint(ctx, 60); err != nil || cp != 100 {
		t.Fatalf("new leader advance(60) = %d, %v; want 100", cp, err)
	}
}

func TestCheckpointNeverGoesBack(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	l, err := Campaign(ctx, newSession(t, cli, 5), testKeys, "cf1", "n1")
	if err != nil {
		t.Fatalf("campaign: %v", err)
	}
	if cp, err := GetCheckpoint(ctx, cli, testKeys, "cf1"); err != nil || cp != 0 {
		t.Fatalf("initial checkpoint = %d, %v; want 0", cp, err)
	}
	steps := []struct{ in, want uint64 }{{100, 100}, {50, 100}, {100, 100}, {0, 100}, {200, 200}, {199, 200}}
	for _, s := range steps {
		got, err := l.AdvanceCheckpoint(ctx, s.in)
		if err != nil || got != s.want {
			t.Fatalf("AdvanceCheckpoint(%d) = %d, %v; want %d", s.in, got, err, s.want)
		}
		if cp, _ := GetCheckpoint(ctx, cli, testKeys, "cf1"); cp != s.want {
			t.Fatalf("stored checkpoint %d after %d, want %d", cp, s.in, s.want)
		}
	}
	// A write from outside (an operator) that moves the value ahead is kept, not overwritten.
	if _, err := cli.Put(ctx, testKeys.Checkpoint("cf1"), `{"checkpoint_ts":300}`); err != nil {
		t.Fatalf("put: %v", err)
	}
	if got, err := l.AdvanceCheckpoint(ctx, 250); err != nil || got != 300 {
		t.Fatalf("AdvanceCheckpoint(250) = %d, %v; want 300", got, err)
	}
}

func TestCheckpointConcurrentAdvances(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	l, err := Campaign(ctx, newSession(t, cli, 5), testKeys, "cf1", "n1")
	if err != nil {
		t.Fatalf("campaign: %v", err)
	}
	rng := rand.New(rand.NewSource(1))
	var (
		wg      sync.WaitGroup
		highest uint64
	)
	vals := make([][]uint64, 4)
	for i := range vals {
		for range 10 {
			v := uint64(rng.Intn(1000) + 1)
			vals[i] = append(vals[i], v)
			highest = max(highest, v)
		}
	}
	for _, vs := range vals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, v := range vs {
				got, err := l.AdvanceCheckpoint(ctx, v)
				if err != nil && !errors.Is(err, ErrConflict) {
					t.Errorf("AdvanceCheckpoint(%d): %v", v, err)
					return
				}
				if err == nil && got < v {
					t.Errorf("AdvanceCheckpoint(%d) returned %d, below the request", v, got)
				}
			}
		}()
	}
	wg.Wait()
	// Conflicts may have dropped some writes; one more advance to the highest must land it.
	if got, err := l.AdvanceCheckpoint(ctx, highest); err != nil || got != highest {
		t.Fatalf("final advance = %d, %v; want %d", got, err, highest)
	}
}

func TestPublishAndGetStatus(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	l, err := Campaign(ctx, newSession(t, cli, 5), testKeys, "cf1", "n1")
	if err != nil {
		t.Fatalf("campaign: %v", err)
	}
	st := ChangefeedStatus{Maintainer: "spoofed", Epoch: 1, CheckpointTs: 42, Spans: map[string]int{"replicating": 3},
		Operators: 1, NodeSpans: map[string]int{"n1": 3}, Bootstrapped: true}
	if err := l.PublishStatus(ctx, st); err != nil {
		t.Fatalf("publish: %v", err)
	}
	got, err := GetStatus(ctx, cli, testKeys, "cf1")
	if err != nil {
		t.Fatalf("get status: %v", err)
	}
	if got.Changefeed != "cf1" || got.Maintainer != "n1" || got.Epoch != l.Epoch || got.CheckpointTs != 42 ||
		got.Spans["replicating"] != 3 || !got.Bootstrapped || got.UpdatedAt.IsZero() {
		t.Fatalf("status = %+v", got)
	}
}

func TestDoneWhenElectionKeyDeleted(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	l, err := Campaign(ctx, newSession(t, cli, 5), testKeys, "cf1", "n1")
	if err != nil {
		t.Fatalf("campaign: %v", err)
	}
	if _, err := cli.Delete(ctx, l.Key); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if !closedWithin(l.Done(), waitTimeout) {
		t.Fatal("Done not closed after the election key was deleted")
	}
	if err := l.PublishStatus(ctx, ChangefeedStatus{}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("publish after key deletion = %v, want ErrNotLeader", err)
	}
}

func TestCampaignCancelledLeavesNoKey(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	a, err := Campaign(ctx, newSession(t, cli, 5), testKeys, "cf1", "n1")
	if err != nil {
		t.Fatalf("campaign: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := Campaign(cctx, newSession(t, cli, 5), testKeys, "cf1", "n2"); err == nil {
		t.Fatal("n2 won while n1 leads")
	}
	resp, err := cli.Get(ctx, testKeys.ElectionPrefix("cf1")+"/", clientPrefix())
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != a.Key {
		t.Fatalf("election keys after cancelled campaign: %v, %v; want only %s", resp, err, a.Key)
	}
}

func TestElectionRejectsBadInput(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	sess := newSession(t, cli, 5)
	if _, err := Campaign(ctx, sess, testKeys, "bad/cf", "n1"); err == nil || !strings.Contains(err.Error(), "changefeed id") {
		t.Errorf("campaign with bad cf = %v", err)
	}
	if _, err := Campaign(ctx, sess, testKeys, "cf1", ""); err == nil || !strings.Contains(err.Error(), "node id") {
		t.Errorf("campaign with empty node = %v", err)
	}
	if _, err := WatchLeader(ctx, cli, Keys{}, "cf1"); err == nil {
		t.Error("WatchLeader with empty cluster succeeded")
	}
	if _, err := cli.Put(ctx, testKeys.ElectionPrefix("cf1")+"/x", "not json"); err != nil {
		t.Fatalf("put: %v", err)
	}
	if _, err := GetLeader(ctx, cli, testKeys, "cf1"); err == nil || !strings.Contains(err.Error(), "malformed JSON") {
		t.Errorf("GetLeader on a malformed key = %v", err)
	}
	if _, err := cli.Put(ctx, testKeys.Checkpoint("cf2"), "{"); err != nil {
		t.Fatalf("put: %v", err)
	}
	if _, err := GetCheckpoint(ctx, cli, testKeys, "cf2"); err == nil || !strings.Contains(err.Error(), "malformed JSON") {
		t.Errorf("GetCheckpoint on a malformed value = %v", err)
	}
	l, err := Campaign(ctx, sess, testKeys, "cf2", "n1")
	if err != nil {
		t.Fatalf("campaign cf2: %v", err)
	}
	if _, err := l.AdvanceCheckpoint(ctx, 10); err == nil || !strings.Contains(err.Error(), "malformed JSON") {
		t.Errorf("AdvanceCheckpoint over a malformed value = %v", err)
	}
}

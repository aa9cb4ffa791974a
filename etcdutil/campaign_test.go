package etcdutil

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// blackHole accepts TCP connections and never answers, like a frozen (SIGSTOP) etcd member.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	return ln.Addr().String()
}

// The teardown of a campaign must not wait for an etcd that does not answer, even when the
// caller's context has no deadline: the node's next session waits for it.
func TestDropCandidateBoundedWhenEtcdFrozen(t *testing.T) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{blackHole(t)}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the usual case: the campaign ended because its context was cancelled
	start := time.Now()
	dropCandidate(ctx, cli, candidate{key: "/tidemark/x/election/cf1/1", rev: 7})
	if took := time.Since(start); took > cleanupTimeout+500*time.Millisecond {
		t.Fatalf("dropCandidate against a frozen etcd took %v, want at most about %v", took, cleanupTimeout)
	}
}

// A term whose resign never reached etcd leaves its election key behind. The session's next
// campaign must open a new term, with a new epoch, behind the candidates already waiting: a
// maintainer numbers its dispatchers (epoch, counter) from 1 each term, so a second term at the
// same epoch gave new spans the IDs of dispatchers the first term had placed.
func TestCampaignAfterFailedResignIsANewTerm(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	sess := newSession(t, cli, 5)
	first, err := Campaign(ctx, sess, testKeys, "cf1", "n1")
	if err != nil {
		t.Fatalf("campaign n1: %v", err)
	}
	// The term ends, but its resign fails: the key stays.
	first.stop()
	<-first.Done()
	if resp, err := cli.Get(ctx, first.Key); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("election key after a resign that failed: %v, %v; want it still there", resp, err)
	}
	waiting := campaignAsync(ctx, t, cli, "cf1", "n2")
	time.Sleep(200 * time.Millisecond) // n2's key is written and waits behind n1's
	again := make(chan *Leadership, 1)
	go func() {
		l, err := Campaign(ctx, sess, testKeys, "cf1", "n1")
		if err != nil {
			t.Errorf("second campaign of n1: %v", err)
		}
		again <- l
	}()
	second := recv(t, waiting, "n2 leads once n1's old term is gone")
	if second == nil || second.Epoch <= first.Epoch {
		t.Fatalf("n2 leadership = %+v, want an epoch above %d", second, first.Epoch)
	}
	if err := first.PublishStatus(ctx, ChangefeedStatus{}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("publish by the old term = %v, want ErrNotLeader", err)
	}
	if err := second.Resign(ctx); err != nil {
		t.Fatalf("resign n2: %v", err)
	}
	third := recv(t, again, "n1 leads again")
	if third == nil || third.Epoch <= second.Epoch {
		t.Fatalf("n1's new leadership = %+v, want an epoch above %d", third, second.Epoch)
	}
}

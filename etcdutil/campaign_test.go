package etcdutil

import (
	"context"
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

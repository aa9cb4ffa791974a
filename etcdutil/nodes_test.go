package etcdutil

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func node(id string) NodeInfo {
	return NodeInfo{ID: id, Addr: "127.0.0.1:1" + id[len(id)-1:], PID: 7, StartedAt: time.Unix(1700000000, 0).UTC(), Incarnation: 3}
}

func TestRegisterListWatchNodes(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	s1, s2 := newSession(t, cli, 5), newSession(t, cli, 5)

	ch, err := WatchNodes(ctx, cli, testKeys)
	if err != nil {
		t.Fatalf("WatchNodes: %v", err)
	}
	if first := recv(t, ch, "first snapshot").Nodes; len(first) != 0 {
		t.Fatalf("first snapshot = %v, want empty", first)
	}
	if err := RegisterNode(ctx, s1, testKeys, node("n1")); err != nil {
		t.Fatalf("register n1: %v", err)
	}
	if err := RegisterNode(ctx, s2, testKeys, node("n2")); err != nil {
		t.Fatalf("register n2: %v", err)
	}
	set := recvUntil(t, ch, "both nodes", func(s NodeSet) bool { return len(s.Nodes) == 2 })
	if snap := set.Nodes; snap["n1"] != node("n1") || snap["n2"] != node("n2") {
		t.Fatalf("snapshot = %+v", snap)
	}
	list, err := ListNodes(ctx, cli, testKeys)
	if err != nil || len(list) != 2 || list[0].ID != "n1" || list[1].ID != "n2" {
		t.Fatalf("ListNodes = %+v, %v; want n1, n2", list, err)
	}

	// A graceful close revokes the lease and the node leaves at once.
	if err := s2.Close(); err != nil {
		t.Fatalf("close session: %v", err)
	}
	gone := recvUntil(t, ch, "n2 gone", func(s NodeSet) bool { _, ok := s.Nodes["n2"]; return len(s.Nodes) == 1 && !ok })
	if gone.Revision <= set.Revision {
		t.Errorf("the set without n2 has revision %d, not above the earlier set's %d", gone.Revision, set.Revision)
	}
	now, err := LoadNodes(ctx, cli, testKeys)
	if err != nil || len(now.Nodes) != 1 || now.Revision < gone.Revision {
		t.Fatalf("LoadNodes = %+v, %v; want n1 at revision %d or later", now, err, gone.Revision)
	}
}

func TestNodeLeaseExpiryRemovesNode(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	sess := newSession(t, cli, 1)
	if err := RegisterNode(ctx, sess, testKeys, node("n1")); err != nil {
		t.Fatalf("register: %v", err)
	}
	ch, err := WatchNodes(ctx, cli, testKeys)
	if err != nil {
		t.Fatalf("WatchNodes: %v", err)
	}
	if first := recv(t, ch, "first snapshot").Nodes; len(first) != 1 {
		t.Fatalf("first snapshot = %v, want n1", first)
	}
	// Orphan stops the keep-alive without revoking: the process "hangs" and the lease runs out.
	sess.Orphan()
	start := time.Now()
	recvUntil(t, ch, "n1 expired", func(s NodeSet) bool { return len(s.Nodes) == 0 })
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("expiry took %v with a 1s TTL", took)
	}
}

func TestWatchNodesClosesWithContext(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	wctx, cancel := context.WithCancel(ctx)
	ch, err := WatchNodes(wctx, cli, testKeys)
	if err != nil {
		t.Fatalf("WatchNodes: %v", err)
	}
	recv(t, ch, "first snapshot")
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			// At most one more snapshot may be buffered; the channel must close next.
			if _, ok := <-ch; ok {
				t.Fatal("channel still open after cancel")
			}
		}
	case <-time.After(waitTimeout):
		t.Fatal("channel not closed after cancel")
	}
}

func TestRegisterNodeRejectsBadInput(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	sess := newSession(t, cli, 5)
	bad := []struct {
		k    Keys
		n    NodeInfo
		want string
	}{
		{testKeys, NodeInfo{ID: "a/b", Addr: "x:1"}, "node id"},
		{testKeys, NodeInfo{ID: "n1"}, "addr"},
		{Keys{Cluster: ""}, node("n1"), "cluster id"},
	}
	for _, tc := range bad {
		err := RegisterNode(ctx, sess, tc.k, tc.n)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("RegisterNode(%+v) = %v, want error about %q", tc.n, err, tc.want)
		}
	}
	if list, err := ListNodes(ctx, cli, testKeys); err != nil || len(list) != 0 {
		t.Fatalf("after bad registrations ListNodes = %v, %v; want none", list, err)
	}
}

func TestListNodesMalformedJSON(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	if _, err := cli.Put(ctx, testKeys.Node("n1"), "{not json"); err != nil {
		t.Fatalf("put: %v", err)
	}
	_, err := ListNodes(ctx, cli, testKeys)
	if err == nil || !strings.Contains(err.Error(), "malformed JSON") || !strings.Contains(err.Error(), testKeys.Node("n1")) {
		t.Fatalf("ListNodes = %v, want a malformed JSON error naming the key", err)
	}
	if _, err := WatchNodes(ctx, cli, testKeys); err == nil {
		t.Fatal("WatchNodes on malformed registry succeeded")
	}
	if errors.Is(err, ErrNotFound) {
		t.Fatal("malformed JSON reported as not found")
	}
}

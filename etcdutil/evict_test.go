package etcdutil

import (
	"errors"
	"testing"
)

func TestEvictNodeGuardedByElection(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	for _, id := range []string{"n2", "n3"} {
		if err := RegisterNode(ctx, newSession(t, cli, 5), testKeys, NodeInfo{ID: id, Addr: id + ":1"}); err != nil {
			t.Fatalf("register %s: %v", id, err)
		}
	}
	lead, err := Campaign(ctx, newSession(t, cli, 5), testKeys, "cf1", "n1")
	if err != nil {
		t.Fatalf("campaign: %v", err)
	}
	if err := lead.EvictNode(ctx, "n2"); err != nil {
		t.Fatalf("evict n2: %v", err)
	}
	if err := lead.EvictNode(ctx, "n2"); err != nil {
		t.Fatalf("evict n2 again (already gone): %v", err)
	}
	if err := lead.EvictNode(ctx, "bad/id"); err == nil {
		t.Fatalf("evict of an invalid ID succeeded")
	}
	if err := lead.Resign(ctx); err != nil {
		t.Fatalf("resign: %v", err)
	}
	// Deposed: the eviction must not happen.
	if err := lead.EvictNode(ctx, "n3"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("evict by deposed leader: %v, want ErrNotLeader", err)
	}
	nodes, err := ListNodes(ctx, cli, testKeys)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(nodes) != 1 || nodes[0].ID != "n3" {
		t.Fatalf("nodes after evictions = %+v, want only n3", nodes)
	}
}

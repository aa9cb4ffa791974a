package etcdutil

import (
	"context"
	"testing"
	"time"
)

// TestUnhealthyMark: a node's own mark reaches WatchAdmin apart from drains, lists with its
// reason, can be cleared twice, and disappears with the node's session lease.
func TestUnhealthyMark(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	sess := newSession(t, cli, 5)
	snaps, err := WatchAdmin(ctx, cli, testKeys, "cf1")
	if err != nil {
		t.Fatal(err)
	}
	if err := MarkUnhealthy(ctx, cli, testKeys, sess.Lease(), UnhealthyMark{Node: "bad/node"}); err == nil {
		t.Fatal("mark with a malformed node ID accepted")
	}
	mark := UnhealthyMark{Node: "n1", Since: time.Unix(1000, 0).UTC(), Reason: "no space left on device", Changefeeds: []string{"cf1"}}
	if err := MarkUnhealthy(ctx, cli, testKeys, sess.Lease(), mark); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, snaps, "n1 unhealthy", func(s AdminSnapshot) bool {
		return len(s.Unhealthy) == 1 && s.Unhealthy[0] == "n1" && len(s.Drained) == 0
	})
	got, err := ListUnhealthy(ctx, cli, testKeys)
	if err != nil || len(got) != 1 || got[0].Reason != mark.Reason || !got[0].Since.Equal(mark.Since) {
		t.Fatalf("ListUnhealthy = %+v, %v; want %+v", got, err, mark)
	}
	if err := UnmarkUnhealthy(ctx, cli, testKeys, "n1"); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, snaps, "n1 healthy", func(s AdminSnapshot) bool { return len(s.Unhealthy) == 0 })
	if err := UnmarkUnhealthy(ctx, cli, testKeys, "n1"); err != nil {
		t.Fatalf("clearing an absent mark: %v", err)
	}
	// The mark lives on the node's session lease.
	if err := MarkUnhealthy(ctx, cli, testKeys, sess.Lease(), mark); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, snaps, "n1 unhealthy again", func(s AdminSnapshot) bool { return len(s.Unhealthy) == 1 })
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, snaps, "mark gone with the session", func(s AdminSnapshot) bool { return len(s.Unhealthy) == 0 })
	if got, err := ListUnhealthy(context.Background(), cli, testKeys); err != nil || len(got) != 0 {
		t.Fatalf("after the session: %+v, %v", got, err)
	}
}

package etcdutil

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/admin"
)

func TestAdminRequestValidate(t *testing.T) {
	ok := []AdminRequest{
		{ID: "r1", Changefeed: "cf", Kind: admin.Move, Spans: []string{"5"}, Node: "n2"},
		{ID: "r1", Changefeed: "cf", Kind: admin.Split, Spans: []string{"5"}},
		{ID: "r1", Changefeed: "cf", Kind: admin.Split, Spans: []string{"5"}, Pieces: 4},
		{ID: "r1", Changefeed: "cf", Kind: admin.Merge, Spans: []string{"5:00-01", "5:01-02"}},
		{ID: "r1", Changefeed: "cf", Kind: admin.Drain, Node: "n1"},
		{ID: "r1", Changefeed: "cf", Kind: admin.Resign},
	}
	for _, r := range ok {
		if err := r.Validate(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
	bad := []struct {
		r    AdminRequest
		want string
	}{
		{AdminRequest{ID: "", Changefeed: "cf", Kind: admin.Resign}, "admin request id is empty"},
		{AdminRequest{ID: "r/1", Changefeed: "cf", Kind: admin.Resign}, "invalid admin request id"},
		{AdminRequest{ID: "r1", Changefeed: "", Kind: admin.Resign}, "field changefeed"},
		{AdminRequest{ID: "r1", Changefeed: "cf", Kind: "frob"}, `unknown kind "frob"`},
		{AdminRequest{ID: "r1", Changefeed: "cf", Kind: admin.Move, Spans: []string{"5"}}, "destination node"},
		{AdminRequest{ID: "r1", Changefeed: "cf", Kind: admin.Split, Spans: []string{"5"}, Pieces: 1}, "pieces"},
		{AdminRequest{ID: "r1", Changefeed: "cf", Kind: admin.Merge, Spans: []string{"5"}}, "at least two spans"},
		{AdminRequest{ID: "r1", Changefeed: "cf", Kind: admin.Drain, Node: "a b"}, "invalid node id"},
	}
	for _, b := range bad {
		err := b.r.Validate()
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: error %v, want one containing %q", b.r, err, b.want)
		}
	}
}

// TestAdminQueueRoundTrip: a request shows up in the maintainer's snapshot, its result reaches a
// waiting caller, and the result's transaction removes the request so no successor sees it again.
func TestAdminQueueRoundTrip(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	sess := newSession(t, cli, 5)
	lead, err := Campaign(ctx, sess, testKeys, "cf1", "n1")
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := WatchAdmin(ctx, cli, testKeys, "cf1")
	if err != nil {
		t.Fatal(err)
	}
	if first := recv(t, snaps, "first snapshot"); len(first.Requests) != 0 || len(first.Drained) != 0 {
		t.Fatalf("first snapshot = %+v, want empty", first)
	}
	req := AdminRequest{ID: NewAdminID(time.Now()), Changefeed: "cf1", Kind: admin.Move, Spans: []string{"7"}, Node: "n2"}
	other := AdminRequest{ID: NewAdminID(time.Now()), Changefeed: "cf2", Kind: admin.Resign}
	for _, r := range []AdminRequest{req, other} {
		if err := SubmitAdminRequest(ctx, cli, testKeys, r, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := SubmitAdminRequest(ctx, cli, testKeys, req, time.Minute); !errors.Is(err, ErrExists) {
		t.Fatalf("second submit of %s: %v, want ErrExists", req.ID, err)
	}
	snap := recvUntil(t, snaps, "request in snapshot", func(s AdminSnapshot) bool { return len(s.Requests) == 1 })
	if got := snap.Requests[0]; got.ID != req.ID || got.Kind != admin.Move || got.Node != "n2" || got.Spans[0] != "7" {
		t.Fatalf("snapshot request = %+v, want %+v (cf2's request filtered out)", got, req)
	}

	waited := make(chan AdminResult, 1)
	go func() {
		res, err := WaitAdminResult(ctx, cli, testKeys, req.ID)
		if err != nil {
			t.Error(err)
		}
		waited <- res
	}()
	if err := lead.PublishAdminResult(ctx, AdminResult{ID: req.ID, Kind: admin.Move, Outcome: admin.Done, Message: "moved"}); err != nil {
		t.Fatal(err)
	}
	res := recv(t, waited, "result")
	if res.Outcome != admin.Done || res.Message != "moved" || res.Maintainer != "n1" || res.Epoch != lead.Epoch || res.Changefeed != "cf1" {
		t.Errorf("result = %+v", res)
	}
	recvUntil(t, snaps, "request gone", func(s AdminSnapshot) bool { return len(s.Requests) == 0 })

	// A deposed maintainer cannot answer.
	if err := lead.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	err = lead.PublishAdminResult(ctx, AdminResult{ID: other.ID, Outcome: admin.Done})
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("publish after resign: %v, want ErrNotLeader", err)
	}
	if err := WithdrawAdminRequest(ctx, cli, testKeys, other.ID); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, testKeys.AdminRequestsPrefix(), clientPrefix())
	if err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("requests left after withdraw: %v %v", resp, err)
	}
}

// TestDrainMarkerFollowsNodeLease: the marker needs a live node and disappears with its lease.
func TestDrainMarkerFollowsNodeLease(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	if err := MarkDrained(ctx, cli, testKeys, "ghost", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("drain of unregistered node: %v, want ErrNotFound", err)
	}
	sess := newSession(t, cli, 5)
	if err := RegisterNode(ctx, sess, testKeys, NodeInfo{ID: "n1", Addr: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	snaps, err := WatchAdmin(ctx, cli, testKeys, "cf1")
	if err != nil {
		t.Fatal(err)
	}
	if err := MarkDrained(ctx, cli, testKeys, "n1", time.Now()); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, snaps, "n1 drained", func(s AdminSnapshot) bool { return len(s.Drained) == 1 && s.Drained[0] == "n1" })
	if got, err := ListDrained(ctx, cli, testKeys); err != nil || len(got) != 1 {
		t.Fatalf("ListDrained = %v, %v", got, err)
	}
	// The node exits: its lease goes, and the drain with it.
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, snaps, "drain ended with the node", func(s AdminSnapshot) bool { return len(s.Drained) == 0 })
	if err := UnmarkDrained(context.Background(), cli, testKeys, "n1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("undrain of undrained node: %v, want ErrNotFound", err)
	}
}

// TestPublishAdminResultsBatch: a batch of answers lands in one transaction, each result readable
// and each request gone, and no more than MaxAdminResultsPerTxn go at once.
func TestPublishAdminResultsBatch(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	lead, err := Campaign(ctx, newSession(t, cli, 5), testKeys, "cf1", "n1")
	if err != nil {
		t.Fatal(err)
	}
	var results []AdminResult
	for i := range MaxAdminResultsPerTxn + 3 {
		r := AdminRequest{ID: fmt.Sprintf("r%03d", i), Changefeed: "cf1", Kind: admin.Move, Spans: []string{"7"}, Node: "n2"}
		if err := SubmitAdminRequest(ctx, cli, testKeys, r, time.Minute); err != nil {
			t.Fatal(err)
		}
		results = append(results, AdminResult{ID: r.ID, Kind: admin.Move, Outcome: admin.Done, Message: fmt.Sprint("moved ", i)})
	}
	before, err := cli.Get(ctx, "\x00", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	n, err := lead.PublishAdminResults(ctx, results)
	if err != nil || n != MaxAdminResultsPerTxn {
		t.Fatalf("published %d (err %v), want the first %d", n, err, MaxAdminResultsPerTxn)
	}
	after, err := cli.Get(ctx, "\x00", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if writes := after.Header.Revision - before.Header.Revision; writes != 1 {
		t.Errorf("the batch took %d revisions, want 1 transaction", writes)
	}
	for i, want := range results {
		res, err := cli.Get(ctx, testKeys.AdminResult(want.ID))
		if err != nil {
			t.Fatal(err)
		}
		req, err := cli.Get(ctx, testKeys.AdminRequest(want.ID))
		if err != nil {
			t.Fatal(err)
		}
		published := i < n
		if got := len(res.Kvs) == 1 && len(req.Kvs) == 0; got != published {
			t.Errorf("%s: result stored and request gone = %v, want %v", want.ID, got, published)
		}
	}
	if m, err := lead.PublishAdminResults(ctx, results[n:]); err != nil || m != 3 {
		t.Fatalf("the rest: published %d (err %v), want 3", m, err)
	}
}

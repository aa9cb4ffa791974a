package etcdutil

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestChangefeedCRUD(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)

	if _, err := GetChangefeed(ctx, cli, testKeys, "cf1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of absent = %v, want ErrNotFound", err)
	}
	info := validInfo()
	if err := CreateChangefeed(ctx, cli, testKeys, info); err != nil {
		t.Fatalf("create: %v", err)
	}
	if info.SplitPieces != 0 || info.State != "" {
		t.Fatalf("CreateChangefeed changed the caller's value: %+v", info)
	}
	if err := CreateChangefeed(ctx, cli, testKeys, info); !errors.Is(err, ErrExists) {
		t.Fatalf("second create = %v, want ErrExists", err)
	}
	got, err := GetChangefeed(ctx, cli, testKeys, "cf1")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.SplitPieces != 2 || got.State != StateNormal || got.CreatedAt.IsZero() || len(got.Tables) != 2 {
		t.Fatalf("stored info = %+v, want defaults and created_at", got)
	}

	got.State = StatePaused
	created := got.CreatedAt
	got.CreatedAt = created.Add(0) // kept as read
	if err := UpdateChangefeed(ctx, cli, testKeys, got); err != nil {
		t.Fatalf("update: %v", err)
	}
	again, err := GetChangefeed(ctx, cli, testKeys, "cf1")
	if err != nil || again.State != StatePaused || !again.CreatedAt.Equal(created) {
		t.Fatalf("after update = %+v, %v", again, err)
	}

	other := validInfo()
	other.ID = "cf0"
	if err := CreateChangefeed(ctx, cli, testKeys, other); err != nil {
		t.Fatalf("create cf0: %v", err)
	}
	list, err := ListChangefeeds(ctx, cli, testKeys)
	if err != nil || len(list) != 2 || list[0].ID != "cf0" || list[1].ID != "cf1" {
		t.Fatalf("list = %+v, %v; want cf0, cf1", list, err)
	}

	if _, err := cli.Put(ctx, testKeys.ChangefeedStatus("cf1"), `{}`); err != nil {
		t.Fatalf("put status: %v", err)
	}
	if _, err := cli.Put(ctx, testKeys.Checkpoint("cf1"), `{"checkpoint_ts":5}`); err != nil {
		t.Fatalf("put checkpoint: %v", err)
	}
	if err := RemoveChangefeed(ctx, cli, testKeys, "cf1"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	resp, err := cli.Get(ctx, testKeys.ChangefeedsPrefix()+"cf1/", clientPrefix())
	if err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("after remove keys left: %v, %v", resp, err)
	}
	if err := RemoveChangefeed(ctx, cli, testKeys, "cf1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second remove = %v, want ErrNotFound", err)
	}
	if err := UpdateChangefeed(ctx, cli, testKeys, got); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of removed = %v, want ErrNotFound", err)
	}
}

func TestChangefeedValidationChangesNothing(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	bad := validInfo()
	bad.Tables = append(bad.Tables, TableInfo{ID: 1})
	err := CreateChangefeed(ctx, cli, testKeys, bad)
	if err == nil || !strings.Contains(err.Error(), "duplicate table id") {
		t.Fatalf("create with duplicate table = %v", err)
	}
	if _, err := GetChangefeed(ctx, cli, testKeys, bad.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("invalid changefeed was stored: %v", err)
	}
	if err := CreateChangefeed(ctx, cli, testKeys, validInfo()); err != nil {
		t.Fatalf("create: %v", err)
	}
	upd := validInfo()
	upd.State = "bogus"
	if err := UpdateChangefeed(ctx, cli, testKeys, upd); err == nil || !strings.Contains(err.Error(), "field state") {
		t.Fatalf("update with bad state = %v", err)
	}
	if got, _ := GetChangefeed(ctx, cli, testKeys, "cf1"); got.State != StateNormal {
		t.Fatalf("bad update changed the state to %q", got.State)
	}
	for _, id := range []string{"", "../x", "a b"} {
		if _, err := GetChangefeed(ctx, cli, testKeys, id); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want an id error", id, err)
		}
		if err := RemoveChangefeed(ctx, cli, testKeys, id); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Remove(%q) = %v, want an id error", id, err)
		}
	}
}

func TestChangefeedMalformedAndMismatched(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	if _, err := cli.Put(ctx, testKeys.ChangefeedInfo("cf1"), `{"id":`); err != nil {
		t.Fatalf("put: %v", err)
	}
	if _, err := GetChangefeed(ctx, cli, testKeys, "cf1"); err == nil || !strings.Contains(err.Error(), "malformed JSON") {
		t.Fatalf("get malformed = %v", err)
	}
	if _, err := cli.Put(ctx, testKeys.ChangefeedInfo("cf1"), `{"id":"cf2","tables":[{"id":1}]}`); err != nil {
		t.Fatalf("put: %v", err)
	}
	if _, err := ListChangefeeds(ctx, cli, testKeys); err == nil || !strings.Contains(err.Error(), `names changefeed "cf2"`) {
		t.Fatalf("list with mismatched id = %v", err)
	}
}

func TestUpdateChangefeedConflict(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	if err := CreateChangefeed(ctx, cli, testKeys, validInfo()); err != nil {
		t.Fatalf("create: %v", err)
	}
	info, modRev, err := getChangefeed(ctx, cli, testKeys, "cf1")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	// Another writer updates the definition between our read and our write.
	theirs := info
	theirs.State = StatePaused
	if err := UpdateChangefeed(ctx, cli, testKeys, theirs); err != nil {
		t.Fatalf("their update: %v", err)
	}
	info.StartTs = 999
	if err := swapChangefeed(ctx, cli, testKeys, info, modRev); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale update = %v, want ErrConflict", err)
	}
	got, err := GetChangefeed(ctx, cli, testKeys, "cf1")
	if err != nil || got.State != StatePaused || got.StartTs != 100 {
		t.Fatalf("after conflict = %+v, %v; want their update kept", got, err)
	}
}

func TestWatchChangefeeds(t *testing.T) {
	_, cli := newEtcd(t)
	ctx := testCtx(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := WatchChangefeeds(wctx, cli, testKeys)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	if first := recv(t, ch, "first"); len(first) != 0 {
		t.Fatalf("first = %v, want empty", first)
	}
	if err := CreateChangefeed(ctx, cli, testKeys, validInfo()); err != nil {
		t.Fatalf("create: %v", err)
	}
	snap := recv(t, ch, "after create")
	if len(snap) != 1 || snap["cf1"].ID != "cf1" {
		t.Fatalf("snapshot = %+v", snap)
	}
	// A status write is not a definition change: no snapshot; the removal is.
	if _, err := cli.Put(ctx, testKeys.ChangefeedStatus("cf1"), `{}`); err != nil {
		t.Fatalf("put status: %v", err)
	}
	if err := RemoveChangefeed(ctx, cli, testKeys, "cf1"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if snap := recv(t, ch, "after remove"); len(snap) != 0 {
		t.Fatalf("snapshot after remove = %+v, want empty (a status write must not emit)", snap)
	}
}

package etcdutil

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// CreateChangefeed stores a new changefeed definition after applying defaults and validating it.
// CreatedAt is set to now when zero. An existing changefeed of that ID gives ErrExists.
func CreateChangefeed(ctx context.Context, cli *clientv3.Client, k Keys, info ChangefeedInfo) error {
	info = normalized(info)
	if err := k.Validate(); err != nil {
		return err
	}
	if err := info.Validate(); err != nil {
		return err
	}
	if info.CreatedAt.IsZero() {
		info.CreatedAt = time.Now().UTC()
	}
	val, err := encodeChangefeed(info)
	if err != nil {
		return err
	}
	key := k.ChangefeedInfo(info.ID)
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, val)).
		Commit()
	if err != nil {
		return fmt.Errorf("etcdutil: create changefeed %q: %w", info.ID, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("etcdutil: create changefeed %q: %w", info.ID, ErrExists)
	}
	return nil
}

// GetChangefeed reads one changefeed definition; ErrNotFound when absent.
func GetChangefeed(ctx context.Context, cli *clientv3.Client, k Keys, id string) (ChangefeedInfo, error) {
	info, _, err := getChangefeed(ctx, cli, k, id)
	return info, err
}

// getChangefeed also returns the mod revision read, for compare-and-swap updates.
func getChangefeed(ctx context.Context, cli *clientv3.Client, k Keys, id string) (ChangefeedInfo, int64, error) {
	if err := k.checkIDs("changefeed", id); err != nil {
		return ChangefeedInfo{}, 0, err
	}
	key := k.ChangefeedInfo(id)
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return ChangefeedInfo{}, 0, fmt.Errorf("etcdutil: get changefeed %q: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return ChangefeedInfo{}, 0, fmt.Errorf("etcdutil: changefeed %q: %w", id, ErrNotFound)
	}
	info, err := decodeChangefeed(key, id, resp.Kvs[0].Value)
	if err != nil {
		return ChangefeedInfo{}, 0, err
	}
	return info, resp.Kvs[0].ModRevision, nil
}

// ListChangefeeds returns every changefeed definition sorted by ID.
func ListChangefeeds(ctx context.Context, cli *clientv3.Client, k Keys) ([]ChangefeedInfo, error) {
	set, _, err := loadChangefeeds(ctx, cli, k)
	if err != nil {
		return nil, err
	}
	out := make([]ChangefeedInfo, 0, len(set))
	for _, info := range set {
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// UpdateChangefeed replaces a changefeed definition if nobody changed it since it was read here
// (ErrConflict otherwise; the caller re-reads and retries). ErrNotFound when absent. CreatedAt is
// kept from the stored definition when info leaves it zero.
func UpdateChangefeed(ctx context.Context, cli *clientv3.Client, k Keys, info ChangefeedInfo) error {
	info = normalized(info)
	if err := info.Validate(); err != nil {
		return err
	}
	cur, modRev, err := getChangefeed(ctx, cli, k, info.ID)
	if err != nil {
		return err
	}
	if info.CreatedAt.IsZero() {
		info.CreatedAt = cur.CreatedAt
	}
	return swapChangefeed(ctx, cli, k, info, modRev)
}

// swapChangefeed writes info if its key still has the mod revision seen; ErrConflict otherwise.
func swapChangefeed(ctx context.Context, cli *clientv3.Client, k Keys, info ChangefeedInfo, seen int64) error {
	val, err := encodeChangefeed(info)
	if err != nil {
		return err
	}
	key := k.ChangefeedInfo(info.ID)
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", seen)).
		Then(clientv3.OpPut(key, val)).
		Commit()
	if err != nil {
		return fmt.Errorf("etcdutil: update changefeed %q: %w", info.ID, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("etcdutil: update changefeed %q: %w", info.ID, ErrConflict)
	}
	return nil
}

// RemoveChangefeed deletes a changefeed's info, status and checkpoint in one transaction;
// ErrNotFound when there is no info. Election keys are leased and vanish with their maintainers,
// which stop when they see the info gone.
func RemoveChangefeed(ctx context.Context, cli *clientv3.Client, k Keys, id string) error {
	if err := k.checkIDs("changefeed", id); err != nil {
		return err
	}
	key := k.ChangefeedInfo(id)
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), ">", 0)).
		Then(clientv3.OpDelete(key), clientv3.OpDelete(k.ChangefeedStatus(id)), clientv3.OpDelete(k.Checkpoint(id))).
		Commit()
	if err != nil {
		return fmt.Errorf("etcdutil: remove changefeed %q: %w", id, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("etcdutil: remove changefeed %q: %w", id, ErrNotFound)
	}
	return nil
}

// WatchChangefeeds sends every changefeed definition (by ID) at once and again after every change
// to a definition; status and checkpoint writes do not trigger a snapshot. The channel is closed
// when ctx ends. An error is returned only when the first listing fails.
func WatchChangefeeds(ctx context.Context, cli *clientv3.Client, k Keys) (<-chan map[string]ChangefeedInfo, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	f := &snapshotFollower[map[string]ChangefeedInfo]{
		cli:    cli,
		prefix: k.ChangefeedsPrefix(),
		load: func(ctx context.Context) (map[string]ChangefeedInfo, int64, error) {
			return loadChangefeeds(ctx, cli, k)
		},
		relevant: func(key string) bool { return strings.HasSuffix(key, "/info") },
	}
	return f.start(ctx)
}

// loadChangefeeds reads every definition and the revision it was read at.
func loadChangefeeds(ctx context.Context, cli *clientv3.Client, k Keys) (map[string]ChangefeedInfo, int64, error) {
	if err := k.Validate(); err != nil {
		return nil, 0, err
	}
	resp, err := cli.Get(ctx, k.ChangefeedsPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("etcdutil: list changefeeds: %w", err)
	}
	set := make(map[string]ChangefeedInfo)
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		id, ok := strings.CutSuffix(strings.TrimPrefix(key, k.ChangefeedsPrefix()), "/info")
		if !ok || strings.Contains(id, "/") {
			continue // status, checkpoint, or a key tidemark does not own
		}
		info, err := decodeChangefeed(key, id, kv.Value)
		if err != nil {
			return nil, 0, err
		}
		set[id] = info
	}
	return set, resp.Header.Revision, nil
}

// decodeChangefeed parses a stored definition and checks it names the key it is under.
func decodeChangefeed(key, id string, value []byte) (ChangefeedInfo, error) {
	var info ChangefeedInfo
	if err := decodeJSON(key, value, &info); err != nil {
		return ChangefeedInfo{}, err
	}
	if info.ID != id {
		return ChangefeedInfo{}, fmt.Errorf("etcdutil: changefeed entry %s names changefeed %q, want %q", key, info.ID, id)
	}
	info.Normalize()
	return info, nil
}

// normalized returns a defaulted copy with its own tables slice, so callers' values stay untouched.
func normalized(info ChangefeedInfo) ChangefeedInfo {
	info.Tables = append([]TableInfo(nil), info.Tables...)
	info.Normalize()
	return info
}

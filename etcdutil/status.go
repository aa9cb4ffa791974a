package etcdutil

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxCheckpointAttempts bounds the compare-and-swap retries of AdvanceCheckpoint. Only the one
// leader writes the key, so a conflict means an operator or a stale writer raced us; a few
// retries settle it and more would only hide a bug.
const maxCheckpointAttempts = 5

// PublishStatus stores st as the changefeed's status if this node still leads. Changefeed,
// Maintainer and Epoch are filled from the leadership; UpdatedAt is set to now when zero.
// A lost election gives ErrNotLeader.
func (l *Leadership) PublishStatus(ctx context.Context, st ChangefeedStatus) error {
	st.Changefeed, st.Maintainer, st.Epoch = l.cf, l.node, l.Epoch
	if st.UpdatedAt.IsZero() {
		st.UpdatedAt = time.Now().UTC()
	}
	val, err := encodeJSON("changefeed status", st)
	if err != nil {
		return err
	}
	resp, err := l.cli.Txn(ctx).If(l.guard()).Then(clientv3.OpPut(l.keys.ChangefeedStatus(l.cf), val)).Commit()
	if err != nil {
		return fmt.Errorf("etcdutil: publish status of changefeed %q: %w", l.cf, err)
	}
	if !resp.Succeeded {
		return l.notLeader("publish status")
	}
	return nil
}

// AdvanceCheckpoint moves the persisted checkpoint forward to ts and returns the value persisted
// afterwards. A ts at or below the stored one changes nothing and returns the stored one, so the
// checkpoint never goes backwards whatever the caller passes (I3). Every read and write is guarded
// by the election key: a deposed leader gets ErrNotLeader. ErrConflict after repeated lost races.
func (l *Leadership) AdvanceCheckpoint(ctx context.Context, ts uint64) (uint64, error) {
	key := l.keys.Checkpoint(l.cf)
	for range maxCheckpointAttempts {
		cur, modRev, err := l.readCheckpoint(ctx, key)
		if err != nil {
			return 0, err
		}
		if ts <= cur {
			return cur, nil
		}
		val, err := encodeJSON("checkpoint", checkpointValue{CheckpointTs: ts, Epoch: l.Epoch})
		if err != nil {
			return 0, err
		}
		// ModRevision 0 matches an absent key, so the first write is covered by the same compare.
		resp, err := l.cli.Txn(ctx).
			If(l.guard(), clientv3.Compare(clientv3.ModRevision(key), "=", modRev)).
			Then(clientv3.OpPut(key, val)).
			Else(clientv3.OpGet(l.Key)).
			Commit()
		if err != nil {
			return 0, fmt.Errorf("etcdutil: advance checkpoint of changefeed %q to %d: %w", l.cf, ts, err)
		}
		if resp.Succeeded {
			return ts, nil
		}
		if !l.stillHolds(resp) {
			return 0, l.notLeader("advance checkpoint")
		}
	}
	return 0, fmt.Errorf("etcdutil: advance checkpoint of changefeed %q to %d: %d attempts: %w",
		l.cf, ts, maxCheckpointAttempts, ErrConflict)
}

// readCheckpoint reads the stored checkpoint and its mod revision in a transaction guarded by the
// election key, so a deposed leader learns it is deposed even when it has nothing to write.
func (l *Leadership) readCheckpoint(ctx context.Context, key string) (uint64, int64, error) {
	resp, err := l.cli.Txn(ctx).If(l.guard()).Then(clientv3.OpGet(key)).Commit()
	if err != nil {
		return 0, 0, fmt.Errorf("etcdutil: read checkpoint of changefeed %q: %w", l.cf, err)
	}
	if !resp.Succeeded {
		return 0, 0, l.notLeader("advance checkpoint")
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return 0, 0, nil
	}
	var v checkpointValue
	if err := decodeJSON(key, kvs[0].Value, &v); err != nil {
		return 0, 0, err
	}
	return v.CheckpointTs, kvs[0].ModRevision, nil
}

// stillHolds tells, from the Else branch of a failed guarded write, whether the election key is
// still ours (so the failure was a checkpoint conflict, worth a retry).
func (l *Leadership) stillHolds(resp *clientv3.TxnResponse) bool {
	if len(resp.Responses) == 0 {
		return false
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	return len(kvs) == 1 && kvs[0].CreateRevision == int64(l.Epoch)
}

// GetCheckpoint reads the persisted checkpoint of cf; 0 when never persisted.
func GetCheckpoint(ctx context.Context, cli *clientv3.Client, k Keys, cf string) (uint64, error) {
	if err := k.checkIDs("changefeed", cf); err != nil {
		return 0, err
	}
	key := k.Checkpoint(cf)
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("etcdutil: get checkpoint of changefeed %q: %w", cf, err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	var v checkpointValue
	if err := decodeJSON(key, resp.Kvs[0].Value, &v); err != nil {
		return 0, err
	}
	return v.CheckpointTs, nil
}

// GetStatus reads the last status published for cf; ErrNotFound when none.
func GetStatus(ctx context.Context, cli *clientv3.Client, k Keys, cf string) (ChangefeedStatus, error) {
	if err := k.checkIDs("changefeed", cf); err != nil {
		return ChangefeedStatus{}, err
	}
	key := k.ChangefeedStatus(cf)
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return ChangefeedStatus{}, fmt.Errorf("etcdutil: get status of changefeed %q: %w", cf, err)
	}
	if len(resp.Kvs) == 0 {
		return ChangefeedStatus{}, fmt.Errorf("etcdutil: status of changefeed %q: %w", cf, ErrNotFound)
	}
	var st ChangefeedStatus
	if err := decodeJSON(key, resp.Kvs[0].Value, &st); err != nil {
		return ChangefeedStatus{}, err
	}
	return st, nil
}

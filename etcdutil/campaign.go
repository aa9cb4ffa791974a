package etcdutil

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// cleanupTimeout bounds the best-effort delete of a candidate key when a campaign ends without
// winning. It is short on purpose: the caller is usually tearing a session down, and a node may
// not start its next session before that teardown returns. A key the delete misses goes with its
// lease at the latest.
const cleanupTimeout = time.Second

// The campaign is written here rather than taken from concurrency.Election: when its context
// is cancelled while waiting, Election.Campaign resigns with the client's own context, which
// has no deadline, so a node tearing down a session during an etcd outage blocked until etcd
// answered a request sent while it was unreachable (issue 9, seen 6 s after etcd came back).
// Every etcd call below is bounded by ctx or by cleanupTimeout.

// candidate is one node's key in a changefeed's election: the key (prefix + lease ID, as
// concurrency.Election names it, so both can share an election) and its create revision.
type candidate struct {
	key string
	rev int64
}

// putCandidate creates the node's candidate key on the session's lease. A key of this session
// may already be there: the last term's resign did not reach etcd (an etcd leader change, say),
// or an earlier campaign's create did while its answer was lost. It is deleted and made again,
// never taken over: the epoch is the key's create revision, and a maintainer term numbers its
// operators and dispatchers (epoch, counter) from 1, so a second term at the epoch of the last
// one gave a new span the ID of a dispatcher the last term had placed elsewhere (seen in CI:
// kill-etcd-leader, "status does not match the dispatcher it names", checkpoint stuck).
func putCandidate(ctx context.Context, sess *concurrency.Session, prefix, val string) (candidate, error) {
	key := fmt.Sprintf("%s%x", prefix, sess.Lease())
	for attempt := 0; ; attempt++ {
		resp, err := sess.Client().Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, val, clientv3.WithLease(sess.Lease()))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return candidate{}, err
		}
		if resp.Succeeded {
			return candidate{key: key, rev: resp.Header.Revision}, nil
		}
		if attempt == 2 {
			// Only this session's lease writes the key, and this campaign deleted it twice.
			return candidate{}, fmt.Errorf("etcdutil: candidate key %s keeps coming back", key)
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			continue // deleted in between (the lease ended, or an operator): create it
		}
		left := candidate{key: key, rev: kvs[0].CreateRevision}
		if err := left.delete(ctx, sess.Client()); err != nil {
			return candidate{}, fmt.Errorf("etcdutil: delete the candidate key %s an earlier term left: %w", key, err)
		}
	}
}

// waitTurn returns once no candidate key older than c remains under prefix: c leads.
func waitTurn(ctx context.Context, cli *clientv3.Client, prefix string, c candidate) error {
	opts := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(c.rev-1))
	for {
		resp, err := cli.Get(ctx, prefix, opts...)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		if err := waitDeleted(ctx, cli, string(resp.Kvs[0].Key), resp.Header.Revision); err != nil {
			return err
		}
	}
}

// waitDeleted returns once key is deleted after revision rev.
func waitDeleted(ctx context.Context, cli *clientv3.Client, key string, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range cli.Watch(wctx, key, clientv3.WithRev(rev+1)) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("etcdutil: watch ended while waiting for an older candidate to leave")
}

// dropCandidate deletes a candidate key if it is still the one created at rev, within
// cleanupTimeout whatever ctx says (a cancelled ctx is the usual reason to drop it).
func dropCandidate(ctx context.Context, cli *clientv3.Client, c candidate) {
	if c.key == "" || c.rev == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = c.delete(dctx, cli)
}

// delete removes the candidate key if it is still the one created at c.rev: a key made again
// since is not c's.
func (c candidate) delete(ctx context.Context, cli *clientv3.Client) error {
	_, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(c.key), "=", c.rev)).
		Then(clientv3.OpDelete(c.key)).
		Commit()
	return err
}

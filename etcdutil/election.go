package etcdutil

import (
	"context"
	"fmt"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/tidemark/tidemark/wait"
)

// Leadership is a won election for one changefeed. Epoch is the create revision of Key, the
// winner's election key; every maintainer-only write is guarded by it, so once the key is gone
// (lease expired, resigned, deleted by an operator) those writes fail with ErrNotLeader.
type Leadership struct {
	Epoch uint64
	Key   string

	cf   string
	node string
	keys Keys
	cli  *clientv3.Client

	done       chan struct{}
	stop       context.CancelFunc // ends the monitor: on Resign
	resignOnce sync.Once
	resignErr  error
}

// Campaign blocks until node leads cf's election or ctx ends. The returned Leadership is tied to
// sess: when the session's lease is lost, Done is closed.
func Campaign(ctx context.Context, sess *concurrency.Session, k Keys, cf, node string) (*Leadership, error) {
	if sess == nil {
		return nil, fmt.Errorf("etcdutil: campaign: nil session")
	}
	if err := k.checkIDs("changefeed", cf, "node", node); err != nil {
		return nil, err
	}
	val, err := encodeJSON("candidate", candidateValue{Node: node})
	if err != nil {
		return nil, err
	}
	prefix := k.electionKeys(cf)
	c, err := putCandidate(ctx, sess, prefix, val)
	if err == nil {
		err = waitTurn(ctx, sess.Client(), prefix, c)
	}
	if err != nil {
		// A candidate key left behind would block every other node until our lease ends.
		dropCandidate(ctx, sess.Client(), c)
		return nil, fmt.Errorf("etcdutil: campaign for changefeed %q as node %q: %w", cf, node, err)
	}
	mctx, stop := context.WithCancel(sess.Ctx())
	l := &Leadership{
		Epoch: uint64(c.rev),
		Key:   c.key,
		cf:    cf,
		node:  node,
		keys:  k,
		cli:   sess.Client(),
		done:  make(chan struct{}),
		stop:  stop,
	}
	go l.monitor(mctx)
	return l, nil
}

// Done is closed when leadership is over: the session ended, Resign was called, or the election
// key disappeared. The maintainer must stop acting at once.
func (l *Leadership) Done() <-chan struct{} { return l.done }

// Node is the node that holds this leadership.
func (l *Leadership) Node() string { return l.node }

// Changefeed is the changefeed this leadership is for.
func (l *Leadership) Changefeed() string { return l.cf }

// Resign gives up leadership by deleting the election key (only if it is still ours) so another
// node can win at once instead of after the lease TTL. Done is closed even if the delete fails.
// Calling it again returns the first result.
func (l *Leadership) Resign(ctx context.Context) error {
	l.resignOnce.Do(func() {
		l.stop()
		// Guarded like every maintainer-only write: a key re-created by a successor is not ours.
		_, err := l.cli.Txn(ctx).If(l.guard()).Then(clientv3.OpDelete(l.Key)).Commit()
		if err != nil {
			l.resignErr = fmt.Errorf("etcdutil: resign changefeed %q (epoch %d): %w", l.cf, l.Epoch, err)
		}
	})
	<-l.done
	return l.resignErr
}

// monitor closes done when ctx ends (session lost or Resign) or the election key is gone or
// re-created, whichever comes first.
func (l *Leadership) monitor(ctx context.Context) {
	defer close(l.done)
	backoff := relistMinBackoff
	for ctx.Err() == nil {
		resp, err := l.cli.Get(ctx, l.Key)
		if err == nil {
			if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != int64(l.Epoch) {
				return
			}
			if l.watchUntilDeleted(ctx, resp.Header.Revision) {
				return
			}
			backoff = relistMinBackoff
			continue
		}
		// etcd unreachable: keep trying; the session itself ends when the lease cannot be kept.
		if !wait.Sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, relistMaxBackoff)
	}
}

// watchUntilDeleted returns true when the election key is deleted after rev, false when the watch
// ends for another reason.
func (l *Leadership) watchUntilDeleted(ctx context.Context, rev int64) bool {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range l.cli.Watch(wctx, l.Key, clientv3.WithRev(rev+1)) {
		if resp.Err() != nil || resp.Canceled {
			return false
		}
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypeDelete {
				return true
			}
		}
	}
	return false
}

// guard is the fencing comparison of every maintainer-only write.
func (l *Leadership) guard() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(l.Key), "=", int64(l.Epoch))
}

// GetLeader reads the current leader of cf; the zero Leader when nobody campaigns.
func GetLeader(ctx context.Context, cli *clientv3.Client, k Keys, cf string) (Leader, error) {
	ld, _, err := loadLeader(ctx, cli, k, cf)
	return ld, err
}

// WatchLeader sends the current leader of cf at once and again whenever it changes (the zero
// Leader while nobody leads). The channel is closed when ctx ends.
func WatchLeader(ctx context.Context, cli *clientv3.Client, k Keys, cf string) (<-chan Leader, error) {
	if err := k.checkIDs("changefeed", cf); err != nil {
		return nil, err
	}
	f := &snapshotFollower[Leader]{
		cli:    cli,
		prefix: k.electionKeys(cf),
		load: func(ctx context.Context) (Leader, int64, error) {
			return loadLeader(ctx, cli, k, cf)
		},
		same: func(a, b Leader) bool { return a == b },
	}
	return f.start(ctx)
}

// loadLeader reads the lowest-create-revision candidate key of cf: that candidate leads.
func loadLeader(ctx context.Context, cli *clientv3.Client, k Keys, cf string) (Leader, int64, error) {
	if err := k.checkIDs("changefeed", cf); err != nil {
		return Leader{}, 0, err
	}
	resp, err := cli.Get(ctx, k.electionKeys(cf), clientv3.WithFirstCreate()...)
	if err != nil {
		return Leader{}, 0, fmt.Errorf("etcdutil: get leader of changefeed %q: %w", cf, err)
	}
	if len(resp.Kvs) == 0 {
		return Leader{}, resp.Header.Revision, nil
	}
	kv := resp.Kvs[0]
	var c candidateValue
	if err := decodeJSON(string(kv.Key), kv.Value, &c); err != nil {
		return Leader{}, 0, err
	}
	if c.Node == "" {
		return Leader{}, 0, fmt.Errorf("etcdutil: election key %s names no node", kv.Key)
	}
	return Leader{Node: c.Node, Epoch: uint64(kv.CreateRevision)}, resp.Header.Revision, nil
}

// notLeader builds the error of a write whose guard failed.
func (l *Leadership) notLeader(what string) error {
	return fmt.Errorf("etcdutil: %s of changefeed %q by node %q (epoch %d): %w", what, l.cf, l.node, l.Epoch, ErrNotLeader)
}

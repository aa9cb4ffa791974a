package etcdutil

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// EvictNode deletes node's registration key if this leadership still holds. The evicted node's
// own lease guard watches that key and stops all its work when it disappears, then registers
// again empty; the maintainer sees it leave and rejoin. The lease is left alone: the node's
// session is what closes it. A node that is not registered is no error (it already left).
// A deposed leader gets ErrNotLeader and deletes nothing.
func (l *Leadership) EvictNode(ctx context.Context, node string) error {
	if err := l.keys.checkIDs("node", node); err != nil {
		return err
	}
	resp, err := l.cli.Txn(ctx).If(l.guard()).Then(clientv3.OpDelete(l.keys.Node(node))).Commit()
	if err != nil {
		return fmt.Errorf("etcdutil: evict node %q for changefeed %q: %w", node, l.cf, err)
	}
	if !resp.Succeeded {
		return l.notLeader("evict node " + node)
	}
	return nil
}

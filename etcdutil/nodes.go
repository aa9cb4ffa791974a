package etcdutil

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// RegisterNode puts n under the node key with the session's lease, so the entry disappears when
// the process dies or is cut off for longer than the session TTL. Registering again (same ID)
// overwrites the entry and moves it to the new session's lease.
func RegisterNode(ctx context.Context, sess *concurrency.Session, k Keys, n NodeInfo) error {
	if sess == nil {
		return fmt.Errorf("etcdutil: register node: nil session")
	}
	if err := k.checkIDs("node", n.ID); err != nil {
		return err
	}
	if n.Addr == "" {
		return fmt.Errorf("etcdutil: register node %q: field addr is empty", n.ID)
	}
	val, err := encodeJSON("node info", n)
	if err != nil {
		return err
	}
	if _, err := sess.Client().Put(ctx, k.Node(n.ID), val, clientv3.WithLease(sess.Lease())); err != nil {
		return fmt.Errorf("etcdutil: register node %q: %w", n.ID, err)
	}
	return nil
}

// ListNodes returns the live nodes sorted by ID.
func ListNodes(ctx context.Context, cli *clientv3.Client, k Keys) ([]NodeInfo, error) {
	set, err := LoadNodes(ctx, cli, k)
	if err != nil {
		return nil, err
	}
	out := make([]NodeInfo, 0, len(set.Nodes))
	for _, n := range set.Nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// NodeSet is the registry as read at one etcd revision. Two sets of the same registry compare by
// Revision: the higher one is the newer, whichever path (a watch, a direct read) brought it.
type NodeSet struct {
	Nodes    map[string]NodeInfo // by ID
	Revision int64               // the etcd revision the registry was read at
}

// LoadNodes reads the registry now, with the revision it was read at.
func LoadNodes(ctx context.Context, cli *clientv3.Client, k Keys) (NodeSet, error) {
	nodes, rev, err := loadNodes(ctx, cli, k)
	return NodeSet{Nodes: nodes, Revision: rev}, err
}

// WatchNodes sends the registry at once and again after every change to it. A failed or
// compacted watch is repaired by listing again. The channel is closed when ctx ends. An error is
// returned only when the first listing fails.
func WatchNodes(ctx context.Context, cli *clientv3.Client, k Keys) (<-chan NodeSet, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	f := &snapshotFollower[NodeSet]{
		cli:    cli,
		prefix: k.NodesPrefix(),
		load: func(ctx context.Context) (NodeSet, int64, error) {
			set, err := LoadNodes(ctx, cli, k)
			return set, set.Revision, err
		},
		same: func(a, b NodeSet) bool { return maps.Equal(a.Nodes, b.Nodes) },
	}
	return f.start(ctx)
}

// loadNodes reads the registry and the revision it was read at.
func loadNodes(ctx context.Context, cli *clientv3.Client, k Keys) (map[string]NodeInfo, int64, error) {
	if err := k.Validate(); err != nil {
		return nil, 0, err
	}
	resp, err := cli.Get(ctx, k.NodesPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("etcdutil: list nodes: %w", err)
	}
	set := make(map[string]NodeInfo, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		var n NodeInfo
		if err := decodeJSON(key, kv.Value, &n); err != nil {
			return nil, 0, err
		}
		if id := strings.TrimPrefix(key, k.NodesPrefix()); n.ID != id {
			return nil, 0, fmt.Errorf("etcdutil: node entry %s names node %q, want %q", key, n.ID, id)
		}
		set[n.ID] = n
	}
	return set, resp.Header.Revision, nil
}

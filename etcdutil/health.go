package etcdutil

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// UnhealthyMark is the JSON a node stores under admin/unhealthy/<node> while a sink of it has
// failed for longer than its --unhealthy-after: maintainers move its spans off and place none
// there. Unlike a drain mark (an operator's request) the node writes and deletes it itself.
type UnhealthyMark struct {
	Node  string    `json:"node"`
	Since time.Time `json:"since"` // when the sink started failing
	// Reason is the failing sink's error; Changefeeds the changefeeds whose sinks fail.
	Reason      string   `json:"reason"`
	Changefeeds []string `json:"changefeeds"`
}

// AdminUnhealthyPrefix is the prefix of unhealthy marks.
func (k Keys) AdminUnhealthyPrefix() string { return k.Root() + "admin/unhealthy/" }

// AdminUnhealthy is the unhealthy mark of one node.
func (k Keys) AdminUnhealthy(node string) string { return k.AdminUnhealthyPrefix() + node }

// MarkUnhealthy puts (or refreshes) m under m.Node's key on lease, the node's session lease, so
// the mark goes with the node's session (a restarted node starts healthy).
func MarkUnhealthy(ctx context.Context, cli *clientv3.Client, k Keys, lease clientv3.LeaseID, m UnhealthyMark) error {
	if err := k.checkIDs("node", m.Node); err != nil {
		return err
	}
	val, err := encodeJSON("unhealthy mark", m)
	if err != nil {
		return err
	}
	if _, err := cli.Put(ctx, k.AdminUnhealthy(m.Node), val, clientv3.WithLease(lease)); err != nil {
		return fmt.Errorf("etcdutil: mark node %q unhealthy: %w", m.Node, err)
	}
	return nil
}

// UnmarkUnhealthy deletes node's unhealthy mark; deleting an absent mark is not an error (the
// node clears it whenever it is healthy again, whether or not it got to write it).
func UnmarkUnhealthy(ctx context.Context, cli *clientv3.Client, k Keys, node string) error {
	if err := k.checkIDs("node", node); err != nil {
		return err
	}
	if _, err := cli.Delete(ctx, k.AdminUnhealthy(node)); err != nil {
		return fmt.Errorf("etcdutil: clear unhealthy mark of node %q: %w", node, err)
	}
	return nil
}

// ListUnhealthy returns the unhealthy marks by node. A mark whose value does not decode is
// listed with its node and the decoding error as Reason, so ctl still shows the node.
func ListUnhealthy(ctx context.Context, cli *clientv3.Client, k Keys) ([]UnhealthyMark, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	resp, err := cli.Get(ctx, k.AdminUnhealthyPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcdutil: list unhealthy nodes: %w", err)
	}
	out := make([]UnhealthyMark, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		node := strings.TrimPrefix(string(kv.Key), k.AdminUnhealthyPrefix())
		var m UnhealthyMark
		if err := decodeJSON(string(kv.Key), kv.Value, &m); err != nil {
			m = UnhealthyMark{Reason: err.Error()}
		}
		m.Node = node
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

package wireclient

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/span"
)

// MoveSpan asks the real maintainer, through the admin queue as `ctl move` does, to move p's
// span to node, and waits for its answer: after an attack, it shows the maintainer still
// commands the nodes (a node taken over by a forged epoch refused it as stale, and the move hung).
func MoveSpan(ctx context.Context, cli *clientv3.Client, k etcdutil.Keys, cf string, p Placement, node string) (string, error) {
	now := time.Now()
	req := etcdutil.AdminRequest{ID: etcdutil.NewAdminID(now), Changefeed: cf, Kind: admin.Move,
		Spans: []string{span.FormatName(p.Span)}, Node: node, CreatedAt: now}
	if err := etcdutil.SubmitAdminRequest(ctx, cli, k, req, time.Minute); err != nil {
		return "", fmt.Errorf("wireclient: submit move: %w", err)
	}
	res, err := etcdutil.WaitAdminResult(ctx, cli, k, req.ID)
	if err != nil {
		return "", fmt.Errorf("wireclient: wait for the move: %w", err)
	}
	if res.Outcome != "done" {
		return res.Message, fmt.Errorf("wireclient: move of %s to %s: %s: %s", req.Spans[0], node, res.Outcome, res.Message)
	}
	return res.Message, nil
}

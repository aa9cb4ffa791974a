package etcdutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/admin"
)

// Admin request kinds and outcomes are package admin's Kind and Outcome.

// AdminResultTTL is how long a result stays readable: long enough for the caller to read it,
// short enough that results never pile up.
const AdminResultTTL = 10 * time.Minute

// MaxSplitPieces bounds an admin split, so a typo cannot cut a span into a million dispatchers.
const MaxSplitPieces = 256

// minRequestTTL is the shortest lease a request is put with; SubmitAdminRequest takes longer ones.
const minRequestTTL = 5 * time.Second

// AdminRequest is one queued admin operation for one changefeed's maintainer.
type AdminRequest struct {
	ID         string     `json:"id"`
	Changefeed string     `json:"changefeed"`
	Kind       admin.Kind `json:"kind"`
	// Spans names the spans as typed on the command line: "TABLE" or "TABLE:STARTHEX-ENDHEX".
	Spans []string `json:"spans,omitempty"`
	// Node is the destination of a move and the node of a drain.
	Node string `json:"node,omitempty"`
	// Pieces is how many spans a split makes (0: the changefeed's split_pieces).
	Pieces    int       `json:"pieces,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Validate checks the shape of r (not whether the spans or nodes exist: only the maintainer
// knows that). The error names the bad field.
func (r *AdminRequest) Validate() error {
	if err := ValidateID("admin request", r.ID); err != nil {
		return err
	}
	if err := ValidateID("changefeed", r.Changefeed); err != nil {
		return fmt.Errorf("etcdutil: admin request %s field changefeed: %w", r.ID, err)
	}
	need := func(cond bool, what string) error {
		if !cond {
			return fmt.Errorf("etcdutil: admin request %s (%s): %s", r.ID, r.Kind, what)
		}
		return nil
	}
	var err error
	switch r.Kind {
	case admin.Move:
		err = need(len(r.Spans) == 1 && r.Node != "", "needs exactly one span and a destination node")
	case admin.Split:
		err = need(len(r.Spans) == 1 && (r.Pieces == 0 || (r.Pieces >= 2 && r.Pieces <= MaxSplitPieces)),
			fmt.Sprintf("needs exactly one span and pieces 0 (the changefeed's) or 2 to %d", MaxSplitPieces))
	case admin.Merge:
		err = need(len(r.Spans) >= 2, "needs at least two spans")
	case admin.Drain:
		err = need(len(r.Spans) == 0 && r.Node != "", "needs a node and no spans")
	case admin.Resign:
		err = need(len(r.Spans) == 0 && r.Node == "", "takes no spans and no node")
	default:
		return fmt.Errorf("etcdutil: admin request %s field kind: unknown kind %q", r.ID, r.Kind)
	}
	if err == nil && r.Node != "" {
		err = ValidateID("node", r.Node)
	}
	return err
}

// AdminResult is the outcome of one admin request, written by the maintainer that handled it.
type AdminResult struct {
	ID         string        `json:"id"`
	Changefeed string        `json:"changefeed"`
	Kind       admin.Kind    `json:"kind"`
	Outcome    admin.Outcome `json:"outcome"`
	Message    string        `json:"message"`
	// Reason names the fact behind a refusal or failure, for the client's advice.
	Reason     admin.Reason `json:"reason,omitempty"`
	Maintainer string       `json:"maintainer"`
	Epoch      uint64       `json:"epoch"`
	FinishedAt time.Time    `json:"finished_at"`
}

// drainedValue is the JSON stored under admin/drained/<node>.
type drainedValue struct {
	Node  string    `json:"node"`
	Since time.Time `json:"since"`
}

// AdminRequestsPrefix is the prefix of queued admin requests.
func (k Keys) AdminRequestsPrefix() string { return k.Root() + "admin/requests/" }

// AdminResultsPrefix is the prefix of admin results.
func (k Keys) AdminResultsPrefix() string { return k.Root() + "admin/results/" }

// AdminDrainedPrefix is the prefix of drain markers.
func (k Keys) AdminDrainedPrefix() string { return k.Root() + "admin/drained/" }

// AdminDrained is the drain marker of one node: while it exists, maintainers keep spans off it.
func (k Keys) AdminDrained(node string) string { return k.AdminDrainedPrefix() + node }

// adminPrefix covers requests, results and drain markers.
func (k Keys) adminPrefix() string { return k.Root() + "admin/" }

// NewAdminID returns a fresh request ID: the time (sortable, readable in etcdctl) and 4 random bytes.
func NewAdminID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return now.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b[:])
}

// SubmitAdminRequest queues r under a lease of at least ttl, so a request whose caller gave up
// (and could not delete it) cannot be executed long after. ErrExists when the ID is taken.
func SubmitAdminRequest(ctx context.Context, cli *clientv3.Client, k Keys, r AdminRequest, ttl time.Duration) error {
	if err := k.Validate(); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return err
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now().UTC()
	}
	val, err := encodeJSON("admin request", r)
	if err != nil {
		return err
	}
	ttl = max(ttl, minRequestTTL)
	lease, err := cli.Grant(ctx, int64((ttl+time.Second-1)/time.Second))
	if err != nil {
		return fmt.Errorf("etcdutil: admin request %s: grant lease: %w", r.ID, err)
	}
	key := k.AdminRequest(r.ID)
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, val, clientv3.WithLease(lease.ID))).
		Commit()
	if err != nil {
		return fmt.Errorf("etcdutil: submit admin request %s: %w", r.ID, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("etcdutil: submit admin request %s: %w", r.ID, ErrExists)
	}
	return nil
}

// WithdrawAdminRequest deletes a request nobody handled yet (the caller stopped waiting).
func WithdrawAdminRequest(ctx context.Context, cli *clientv3.Client, k Keys, id string) error {
	if err := k.checkIDs("admin request", id); err != nil {
		return err
	}
	if _, err := cli.Delete(ctx, k.AdminRequest(id)); err != nil {
		return fmt.Errorf("etcdutil: withdraw admin request %s: %w", id, err)
	}
	return nil
}

// WaitAdminResult returns the result of request id, waiting for it until ctx ends.
func WaitAdminResult(ctx context.Context, cli *clientv3.Client, k Keys, id string) (AdminResult, error) {
	if err := k.checkIDs("admin request", id); err != nil {
		return AdminResult{}, err
	}
	key := k.AdminResultsPrefix() + id
	for {
		resp, err := cli.Get(ctx, key)
		if err != nil {
			return AdminResult{}, fmt.Errorf("etcdutil: wait for admin result %s: %w", id, err)
		}
		if len(resp.Kvs) > 0 {
			var res AdminResult
			err := decodeJSON(key, resp.Kvs[0].Value, &res)
			return res, err
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := cli.Watch(wctx, key, clientv3.WithRev(resp.Header.Revision+1))
		for wr := range wch {
			if wr.Err() != nil || len(wr.Events) > 0 {
				break
			}
		}
		cancel()
		if ctx.Err() != nil {
			return AdminResult{}, fmt.Errorf("etcdutil: no result for admin request %s: %w", id, ctx.Err())
		}
	}
}

// PublishAdminResult stores res (with a lease of AdminResultTTL) and deletes its request in one
// transaction guarded by the election key: only the current maintainer answers, and a handled
// request can never be handled again by a successor. ErrNotLeader when the guard fails.
func (l *Leadership) PublishAdminResult(ctx context.Context, res AdminResult) error {
	_, err := l.PublishAdminResults(ctx, []AdminResult{res})
	return err
}

// MaxAdminResultsPerTxn bounds the answers one PublishAdminResults transaction carries: two
// operations each, under etcd's default --max-txn-ops of 128.
const MaxAdminResultsPerTxn = 60

// PublishAdminResults is PublishAdminResult for the first MaxAdminResultsPerTxn of rs at once:
// one lease and one guarded transaction for all of them, so a batch of answers costs two etcd
// writes instead of two each (the maintainer's loop waits for them). It returns how many it
// published, all or none of them.
func (l *Leadership) PublishAdminResults(ctx context.Context, rs []AdminResult) (int, error) {
	rs = rs[:min(len(rs), MaxAdminResultsPerTxn)]
	if len(rs) == 0 {
		return 0, nil
	}
	vals := make([]string, len(rs))
	for i, res := range rs {
		if err := ValidateID("admin request", res.ID); err != nil {
			return 0, err
		}
		res.Changefeed, res.Maintainer, res.Epoch = l.cf, l.node, l.Epoch
		if res.FinishedAt.IsZero() {
			res.FinishedAt = time.Now().UTC()
		}
		val, err := encodeJSON("admin result", res)
		if err != nil {
			return 0, err
		}
		vals[i] = val
	}
	lease, err := l.cli.Grant(ctx, int64(AdminResultTTL/time.Second))
	if err != nil {
		return 0, fmt.Errorf("etcdutil: admin result %s: grant lease: %w", rs[0].ID, err)
	}
	ops := make([]clientv3.Op, 0, 2*len(rs))
	for i, res := range rs {
		ops = append(ops, clientv3.OpPut(l.keys.AdminResult(res.ID), vals[i], clientv3.WithLease(lease.ID)),
			clientv3.OpDelete(l.keys.AdminRequest(res.ID)))
	}
	resp, err := l.cli.Txn(ctx).If(l.guard()).Then(ops...).Commit()
	if err != nil {
		return 0, fmt.Errorf("etcdutil: publish admin result %s (and %d more): %w", rs[0].ID, len(rs)-1, err)
	}
	if !resp.Succeeded {
		return 0, l.notLeader("publish admin result")
	}
	return len(rs), nil
}

// AdminSnapshot is what a maintainer follows: the pending requests for its changefeed (oldest
// first), the drained nodes and the unhealthy nodes (each sorted). Malformed lists request keys whose value cannot be
// used; they are left alone (their lease removes them).
type AdminSnapshot struct {
	Requests  []AdminRequest
	Drained   []string
	Unhealthy []string
	Malformed []string
}

// WatchAdmin sends the admin snapshot of cf at once and again after every change to the
// requests or drain markers. The channel is closed when ctx ends.
func WatchAdmin(ctx context.Context, cli *clientv3.Client, k Keys, cf string) (<-chan AdminSnapshot, error) {
	if err := k.checkIDs("changefeed", cf); err != nil {
		return nil, err
	}
	f := &snapshotFollower[AdminSnapshot]{
		cli:    cli,
		prefix: k.adminPrefix(),
		load: func(ctx context.Context) (AdminSnapshot, int64, error) {
			return loadAdmin(ctx, cli, k, cf)
		},
		relevant: func(key string) bool { return !strings.HasPrefix(key, k.AdminResultsPrefix()) },
	}
	return f.start(ctx)
}

// loadAdmin reads requests and drain markers at one revision.
func loadAdmin(ctx context.Context, cli *clientv3.Client, k Keys, cf string) (AdminSnapshot, int64, error) {
	resp, err := cli.Txn(ctx).Then(
		clientv3.OpGet(k.AdminRequestsPrefix(), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend)),
		clientv3.OpGet(k.AdminDrainedPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		clientv3.OpGet(k.AdminUnhealthyPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	).Commit()
	if err != nil {
		return AdminSnapshot{}, 0, fmt.Errorf("etcdutil: read admin requests: %w", err)
	}
	var snap AdminSnapshot
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		key := string(kv.Key)
		var r AdminRequest
		if err := decodeJSON(key, kv.Value, &r); err != nil || r.ID != strings.TrimPrefix(key, k.AdminRequestsPrefix()) {
			snap.Malformed = append(snap.Malformed, key)
			continue
		}
		if r.Changefeed == cf {
			snap.Requests = append(snap.Requests, r)
		}
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		snap.Drained = append(snap.Drained, strings.TrimPrefix(string(kv.Key), k.AdminDrainedPrefix()))
	}
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		snap.Unhealthy = append(snap.Unhealthy, strings.TrimPrefix(string(kv.Key), k.AdminUnhealthyPrefix()))
	}
	sort.Strings(snap.Drained)
	sort.Strings(snap.Unhealthy)
	return snap, resp.Header.Revision, nil
}

// MarkDrained puts node's drain marker on the node's own registry lease, so the drain ends by
// itself when that node process exits (a restarted node takes spans again). ErrNotFound when
// the node is not registered (not alive).
func MarkDrained(ctx context.Context, cli *clientv3.Client, k Keys, node string, now time.Time) error {
	if err := k.checkIDs("node", node); err != nil {
		return err
	}
	resp, err := cli.Get(ctx, k.Node(node))
	if err != nil {
		return fmt.Errorf("etcdutil: drain node %q: %w", node, err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("etcdutil: drain node %q: node is not alive: %w", node, ErrNotFound)
	}
	kv := resp.Kvs[0]
	val, err := encodeJSON("drain marker", drainedValue{Node: node, Since: now.UTC()})
	if err != nil {
		return err
	}
	// The registry key must still be the one read, so the marker cannot outlive a node that
	// restarted in between on a new lease.
	tx, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(k.Node(node)), "=", kv.ModRevision)).
		Then(clientv3.OpPut(k.AdminDrained(node), val, clientv3.WithLease(clientv3.LeaseID(kv.Lease)))).
		Commit()
	if err != nil {
		return fmt.Errorf("etcdutil: drain node %q: %w", node, err)
	}
	if !tx.Succeeded {
		return fmt.Errorf("etcdutil: drain node %q: registry entry changed meanwhile: %w", node, ErrConflict)
	}
	return nil
}

// UnmarkDrained ends node's drain; ErrNotFound when it was not drained.
func UnmarkDrained(ctx context.Context, cli *clientv3.Client, k Keys, node string) error {
	if err := k.checkIDs("node", node); err != nil {
		return err
	}
	resp, err := cli.Delete(ctx, k.AdminDrained(node))
	if err != nil {
		return fmt.Errorf("etcdutil: end drain of node %q: %w", node, err)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("etcdutil: end drain of node %q: not drained: %w", node, ErrNotFound)
	}
	return nil
}

// ListDrained returns the drained nodes, sorted.
func ListDrained(ctx context.Context, cli *clientv3.Client, k Keys) ([]string, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	resp, err := cli.Get(ctx, k.AdminDrainedPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("etcdutil: list drained nodes: %w", err)
	}
	out := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, strings.TrimPrefix(string(kv.Key), k.AdminDrainedPrefix()))
	}
	sort.Strings(out)
	return out, nil
}

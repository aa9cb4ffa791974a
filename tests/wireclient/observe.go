package wireclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/etcdutil"
)

// ErrNoTarget: the cluster offers no node to attack as the attacks need (a non-maintainer node
// above the maintainer's ID, holding a span, with spans elsewhere).
var ErrNoTarget = errors.New("wireclient: no suitable target node")

// StatusAPI is how an observer reaches the nodes' status API: plain HTTP, or HTTPS (verified
// against the cluster's CA) when the nodes run with TLS.
type StatusAPI struct {
	Scheme string // "http" or "https"
	Client *http.Client
}

// PlainHTTP reaches nodes that run without TLS.
var PlainHTTP = StatusAPI{Scheme: "http", Client: http.DefaultClient}

// HTTPS reaches nodes that run with TLS: tlsCfg verifies their certificates.
func HTTPS(tlsCfg *tls.Config) StatusAPI {
	return StatusAPI{Scheme: "https", Client: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}}
}

// Observe learns what an outsider with read access to etcd and the status API knows, and picks
// the target: the node with the largest ID that is not the maintainer, so that the maintainer's
// own name can be claimed to it. The maintainer's ID must be below it (ErrNoTarget otherwise:
// resign the maintainer or pick other node IDs).
func Observe(ctx context.Context, api StatusAPI, cli *clientv3.Client, k etcdutil.Keys, cf string) (Target, error) {
	st, err := etcdutil.GetStatus(ctx, cli, k, cf)
	if err != nil {
		return Target{}, fmt.Errorf("wireclient: status: %w", err)
	}
	nodes, err := etcdutil.ListNodes(ctx, cli, k)
	if err != nil {
		return Target{}, fmt.Errorf("wireclient: nodes: %w", err)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	t := Target{ClusterID: k.Cluster, Changefeed: cf, Maintainer: st.Maintainer, Epoch: st.Epoch, API: api}
	for _, n := range nodes {
		if n.ID != st.Maintainer {
			t.Node, t.Addr = n.ID, n.Addr
		}
	}
	for _, n := range nodes {
		if n.ID != st.Maintainer && n.ID != t.Node {
			t.Bystander = n.ID
		}
	}
	if t.Node == "" || t.Node < st.Maintainer || t.Bystander == "" {
		return t, fmt.Errorf("%w: nodes %v, maintainer %s", ErrNoTarget, nodes, st.Maintainer)
	}
	spans, err := Spans(ctx, api, st.MaintainerStatusAddr, cf)
	if err != nil {
		return t, err
	}
	var victim, foreign bool
	for _, si := range spans {
		if si.State != "replicating" {
			continue
		}
		p, err := PlacementOf(si)
		if err != nil {
			return t, err
		}
		switch {
		case p.Node == t.Node && !victim:
			t.Victim, victim = p, true
		case p.Node != t.Node && !foreign:
			t.Foreign, foreign = p, true
		}
	}
	if !victim || !foreign {
		return t, fmt.Errorf("%w: %s holds a span: %v, others do: %v", ErrNoTarget, t.Node, victim, foreign)
	}
	return t, nil
}

// Spans reads the maintainer's span listing (every span, one page).
func Spans(ctx context.Context, sa StatusAPI, statusAddr, cf string) ([]api.SpanInfo, error) {
	var page api.SpanPage
	err := sa.get(ctx, fmt.Sprintf("%s://%s/api/v1/changefeeds/%s/spans?limit=10000", sa.Scheme, statusAddr, cf), &page)
	return page.Spans, err
}

// Manager reads node's view of its dispatcher manager for cf from its status API.
func Manager(ctx context.Context, sa StatusAPI, statusAddr, cf string) (api.ManagerView, error) {
	var list []api.ChangefeedSummary
	if err := sa.get(ctx, fmt.Sprintf("%s://%s/api/v1/changefeeds", sa.Scheme, statusAddr), &list); err != nil {
		return api.ManagerView{}, err
	}
	for _, c := range list {
		if c.ID == cf && c.Manager != nil {
			return *c.Manager, nil
		}
	}
	return api.ManagerView{}, fmt.Errorf("wireclient: %s shows no dispatcher manager of %s", statusAddr, cf)
}

// Unharmed checks, after the attacks, that t's cluster is as before: the target still follows
// the real maintainer at the real epoch (its manager view), and the victim and foreign spans
// are still replicating on their own nodes with their own dispatchers (a forged remove would
// have stopped the victim, a forged create would have placed the foreign span a second time).
func Unharmed(ctx context.Context, cli *clientv3.Client, k etcdutil.Keys, t Target) error {
	nodes, err := etcdutil.ListNodes(ctx, cli, k)
	if err != nil {
		return fmt.Errorf("wireclient: nodes: %w", err)
	}
	st, err := etcdutil.GetStatus(ctx, cli, k, t.Changefeed)
	if err != nil {
		return fmt.Errorf("wireclient: status: %w", err)
	}
	if st.Maintainer != t.Maintainer || st.Epoch != t.Epoch {
		return fmt.Errorf("wireclient: maintainer changed to %s epoch %d (was %s %d)", st.Maintainer, st.Epoch, t.Maintainer, t.Epoch)
	}
	for _, n := range nodes {
		if n.ID != t.Node {
			continue
		}
		mv, err := Manager(ctx, t.API, n.StatusAddr, t.Changefeed)
		if err != nil {
			return err
		}
		if mv.Epoch != t.Epoch || mv.Maintainer != t.Maintainer {
			return fmt.Errorf("wireclient: %s follows %s epoch %d, not the real maintainer %s epoch %d",
				t.Node, mv.Maintainer, mv.Epoch, t.Maintainer, t.Epoch)
		}
	}
	spans, err := Spans(ctx, t.API, st.MaintainerStatusAddr, t.Changefeed)
	if err != nil {
		return err
	}
	for _, want := range []Placement{t.Victim, t.Foreign} {
		var found *Placement
		for _, si := range spans {
			p, err := PlacementOf(si)
			if err == nil && si.State == "replicating" && p.Dispatcher == want.Dispatcher && p.Node == want.Node {
				found = &p
			}
		}
		if found == nil {
			return fmt.Errorf("wireclient: dispatcher %d.%d no longer replicates on %s", want.Dispatcher.Hi, want.Dispatcher.Lo, want.Node)
		}
		// A dispatcher stopped behind the maintainer's back stays "replicating" in its listing,
		// but its checkpoint stands still.
		if found.Checkpoint <= want.Checkpoint {
			return fmt.Errorf("wireclient: dispatcher %d.%d on %s is listed replicating but its checkpoint stands at %d",
				want.Dispatcher.Hi, want.Dispatcher.Lo, want.Node, found.Checkpoint)
		}
	}
	return nil
}

func (api StatusAPI) get(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("wireclient: %s: %w", url, err)
	}
	resp, err := api.Client.Do(req)
	if err != nil {
		return fmt.Errorf("wireclient: %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("wireclient: %s: HTTP %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("wireclient: %s: %w", url, err)
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/tidemark/tidemark/etcdutil"
)

// newNodesCmd is `ctl nodes`: the registry in etcd, with each node's span count from the
// maintainers' published status.
func newNodesCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "nodes",
		Short: "List the live nodes",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return withCtl(c, f, func(ctx context.Context, env *ctlEnv) error {
				nodes, err := listNodes(ctx, env)
				if err != nil {
					return err
				}
				if env.json {
					return env.printJSON(nodes)
				}
				return printNodes(env, nodes)
			})
		},
	}
}

func listNodes(ctx context.Context, env *ctlEnv) ([]nodeJSON, error) {
	infos, err := etcdutil.ListNodes(ctx, env.cli, env.keys)
	if err != nil {
		return nil, fmt.Errorf("cannot list nodes: %w", err)
	}
	spans, err := spansPerNode(ctx, env)
	if err != nil {
		return nil, err
	}
	drained, err := etcdutil.ListDrained(ctx, env.cli, env.keys)
	if err != nil {
		return nil, err
	}
	marks, err := etcdutil.ListUnhealthy(ctx, env.cli, env.keys)
	if err != nil {
		return nil, err
	}
	sick := make(map[string]etcdutil.UnhealthyMark, len(marks))
	for _, m := range marks {
		sick[m.Node] = m
	}
	now := time.Now()
	out := make([]nodeJSON, 0, len(infos))
	for _, n := range infos {
		nj := nodeJSON{ID: n.ID, Addr: n.Addr, StatusAddr: n.StatusAddr, PID: n.PID, Version: n.Version,
			StartedAt: n.StartedAt, Spans: spans[n.ID], Alive: true, Drained: slices.Contains(drained, n.ID)}
		if !n.StartedAt.IsZero() {
			nj.UptimeSec = now.Sub(n.StartedAt).Round(time.Second).Seconds()
		}
		if m, ok := sick[n.ID]; ok {
			since := m.Since
			nj.Unhealthy, nj.UnhealthySince, nj.UnhealthyReason = true, &since, m.Reason
		}
		out = append(out, nj)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func printNodes(env *ctlEnv, nodes []nodeJSON) error {
	rows := make([][]string, 0, len(nodes))
	for _, n := range nodes {
		pid := "-"
		if n.PID > 0 {
			pid = strconv.Itoa(n.PID)
		}
		uptime := "-"
		if n.Alive && !n.StartedAt.IsZero() {
			uptime = (time.Duration(n.UptimeSec) * time.Second).String()
		}
		health := "ok"
		if n.Unhealthy {
			health = "unhealthy"
		}
		rows = append(rows, []string{n.ID, dash(n.Addr), dash(n.StatusAddr), pid, dash(n.Version), uptime,
			strconv.Itoa(n.Spans), strconv.FormatBool(n.Alive), strconv.FormatBool(n.Drained), health})
	}
	return env.printTable([]string{"NODE", "ADDR", "STATUS-ADDR", "PID", "VERSION", "UPTIME", "SPANS", "ALIVE", "DRAINED", "HEALTH"}, rows)
}

// spansPerNode sums the published per-node span counts over every changefeed.
func spansPerNode(ctx context.Context, env *ctlEnv) (map[string]int, error) {
	infos, err := etcdutil.ListChangefeeds(ctx, env.cli, env.keys)
	if err != nil {
		return nil, fmt.Errorf("cannot list changefeeds: %w", err)
	}
	out := map[string]int{}
	for _, info := range infos {
		st, err := etcdutil.GetStatus(ctx, env.cli, env.keys, info.ID)
		if errors.Is(err, etcdutil.ErrNotFound) || info.State != etcdutil.StateNormal {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read the status of changefeed %s: %w", info.ID, err)
		}
		for n, c := range st.NodeSpans {
			out[n] += c
		}
	}
	return out, nil
}

func countAlive(nodes []nodeJSON) int {
	n := 0
	for _, x := range nodes {
		if x.Alive {
			n++
		}
	}
	return n
}

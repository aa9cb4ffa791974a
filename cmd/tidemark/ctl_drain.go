package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/etcdutil"
)

func newDrainCmd(f *ctlFlags) *cobra.Command {
	var cancel bool
	cmd := &cobra.Command{
		Use:   "drain NODE [--cancel]",
		Short: "Move every span off a node and keep new ones off it",
		Long: "drain marks NODE drained in etcd and asks the maintainer of every running changefeed to move\n" +
			"its spans elsewhere; it returns once the node holds no span (bounded by --timeout, default 1m\n" +
			"for drain). The drain stays in force until `drain NODE --cancel` or until that node process\n" +
			"exits: the mark lives on the node's registry lease, so a restarted node takes spans again.",
		Example: "  tidemark ctl drain node-2\n  tidemark ctl drain node-2 --cancel",
		Args:    exactArgs(1, "one node ID"),
		RunE: func(c *cobra.Command, args []string) error {
			g := *f
			if !c.Flags().Changed("timeout") && !c.Parent().PersistentFlags().Changed("timeout") {
				g.timeout = drainDefaultTimeout
			}
			return withCtl(c, &g, func(ctx context.Context, env *ctlEnv) error {
				if cancel {
					return undrain(ctx, env, args[0])
				}
				return drainNode(ctx, env, args[0])
			})
		},
	}
	cmd.Flags().BoolVar(&cancel, "cancel", false, "end the drain: the node takes spans again")
	return cmd
}

func undrain(ctx context.Context, env *ctlEnv, node string) error {
	err := etcdutil.UnmarkDrained(ctx, env.cli, env.keys, node)
	if errors.Is(err, etcdutil.ErrNotFound) {
		return fmt.Errorf("node %s is not drained; drained nodes show in `tidemark ctl nodes`", node)
	}
	if err != nil {
		return err
	}
	if env.json {
		return env.printJSON(map[string]any{"node": node, "drained": false})
	}
	fmt.Fprintf(env.out, "drain of node %s ended; the schedulers may place spans on it again\n", node)
	return nil
}

// drainNode marks node drained, asks every running changefeed's maintainer to empty it and
// waits for all answers. When any maintainer refuses, the mark is taken back.
func drainNode(ctx context.Context, env *ctlEnv, node string) error {
	err := etcdutil.MarkDrained(ctx, env.cli, env.keys, node, time.Now())
	if errors.Is(err, etcdutil.ErrNotFound) {
		return fmt.Errorf("node %s is not alive; list live nodes with `tidemark ctl nodes`", node)
	}
	if err != nil {
		return err
	}
	infos, err := etcdutil.ListChangefeeds(ctx, env.cli, env.keys)
	if err != nil {
		return fmt.Errorf("cannot list changefeeds: %w", err)
	}
	type answer struct {
		res etcdutil.AdminResult
		err error
	}
	answers := make(chan answer, len(infos))
	req := etcdutil.AdminRequest{Kind: admin.Drain, Node: node}
	asked := 0
	for _, info := range infos {
		if info.State != etcdutil.StateNormal {
			continue
		}
		asked++
		go func() {
			r := req
			r.Changefeed = info.ID
			res, err := submitAdmin(ctx, env, r)
			answers <- answer{res, err}
		}()
	}
	results := make([]adminJSON, 0, asked)
	var failed []error
	for range asked {
		a := <-answers
		if a.err != nil {
			failed = append(failed, a.err)
			continue
		}
		results = append(results, toAdminJSON(req, a.res))
		if a.res.Outcome != admin.Done {
			failed = append(failed, fmt.Errorf("changefeed %s: %s", a.res.Changefeed, withAdvice(req, a.res)))
		}
	}
	if env.json {
		if err := env.printJSON(map[string]any{"node": node, "drained": len(failed) == 0, "changefeeds": results}); err != nil {
			return err
		}
	} else {
		rows := make([][]string, 0, len(results))
		for _, r := range results {
			rows = append(rows, []string{r.Changefeed, string(r.Outcome), r.Message})
		}
		if err := env.printTable([]string{"CHANGEFEED", "OUTCOME", "MESSAGE"}, rows); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = etcdutil.UnmarkDrained(uctx, env.cli, env.keys, node)
		return fmt.Errorf("drain of node %s did not complete, so it was ended (the node may take spans again): %w",
			node, errors.Join(failed...))
	}
	if !env.json {
		fmt.Fprintf(env.out, "node %s holds no spans and stays drained until `tidemark ctl drain %s --cancel` or its process exits\n", node, node)
	}
	return nil
}

// resignJSON is the --json output of resign.
type resignJSON struct {
	adminJSON
	NewMaintainer string  `json:"new_maintainer"`
	NewEpoch      uint64  `json:"new_epoch"`
	HandoverMs    float64 `json:"handover_ms"`
}

func newResignCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "resign CHANGEFEED",
		Short:   "Make the changefeed's maintainer resign, handing the role to another node",
		Example: "  tidemark ctl resign orders",
		Args:    exactArgs(1, "one changefeed name"),
		RunE: func(c *cobra.Command, args []string) error {
			return withCtl(c, f, func(ctx context.Context, env *ctlEnv) error { return resign(ctx, env, args[0]) })
		},
	}
}

// resign asks the maintainer to resign and waits until another node leads.
func resign(ctx context.Context, env *ctlEnv, cf string) error {
	if _, err := etcdutil.GetChangefeed(ctx, env.cli, env.keys, cf); err != nil {
		return notFoundHint(cf, err)
	}
	leaders, err := etcdutil.WatchLeader(ctx, env.cli, env.keys, cf)
	if err != nil {
		return err
	}
	before := <-leaders
	if before.Node == "" {
		return fmt.Errorf("changefeed %s has no maintainer right now; nothing to resign (see `tidemark ctl status`)", cf)
	}
	req := etcdutil.AdminRequest{Changefeed: cf, Kind: admin.Resign}
	res, err := submitAdmin(ctx, env, req)
	if err != nil {
		return err
	}
	if res.Outcome != admin.Done {
		return reportAdmin(env, req, res)
	}
	start := res.FinishedAt
	var after etcdutil.Leader
	for after.Epoch <= res.Epoch {
		l, ok := <-leaders
		if !ok {
			return fmt.Errorf("maintainer %s resigned, but no other node took over within --timeout; check `tidemark ctl status`", res.Maintainer)
		}
		after = l
	}
	took := time.Since(start)
	if env.json {
		return env.printJSON(resignJSON{adminJSON: toAdminJSON(req, res), NewMaintainer: after.Node, NewEpoch: after.Epoch,
			HandoverMs: float64(took.Microseconds()) / 1000})
	}
	fmt.Fprintf(env.out, "maintainer of %s handed over from %s (epoch %d) to %s (epoch %d) within %s\n",
		cf, res.Maintainer, res.Epoch, after.Node, after.Epoch, took.Round(time.Millisecond))
	return nil
}

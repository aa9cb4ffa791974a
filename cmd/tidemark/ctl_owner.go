package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/tidemark/tidemark/server"
	"github.com/tidemark/tidemark/span"
)

func newOwnerCmd(f *ctlFlags) *cobra.Command {
	var cf string
	cmd := &cobra.Command{
		Use:   "owner KEY",
		Short: "Show which node and dispatcher own a key now, with the maintainer's epoch",
		Long: "owner asks the changefeed's maintainer which span holds KEY and which node and dispatcher serve\n" +
			"it now (one per mode), so an application can route work for the key to its owner. KEY is\n" +
			"t<ID> (the first key of table ID), t<ID>:<HEX> (a key inside table ID: t<ID> then the hex bytes)\n" +
			"or 0x<HEX> (a whole key in hex, as `ctl spans --json` prints keys). The answer holds for the\n" +
			"epoch it names: after a failover or a move, ask again.",
		Example: "  tidemark ctl owner t42\n  tidemark ctl owner t42:00ff --changefeed orders --json",
		Args:    exactArgs(1, "one argument, the key"),
		RunE: func(c *cobra.Command, args []string) error {
			if _, err := span.ParseKey(args[0]); err != nil {
				return &usageError{err: err}
			}
			return withCtl(c, f, func(ctx context.Context, env *ctlEnv) error { return showOwner(ctx, env, cf, args[0]) })
		},
	}
	cmd.Flags().StringVar(&cf, "changefeed", "", "changefeed (default: the only one)")
	return cmd
}

func showOwner(ctx context.Context, env *ctlEnv, name, key string) error {
	cf, err := pickChangefeed(ctx, env, name)
	if err != nil {
		return err
	}
	base, err := env.maintainerAPI(ctx, cf)
	if err != nil {
		return err
	}
	var ans server.OwnerResponse
	if err := env.getAPI(ctx, base, "/api/v1/changefeeds/"+cf+"/owner?key="+url.QueryEscape(key), &ans); err != nil {
		return err
	}
	if env.json {
		return env.printJSON(ans)
	}
	rows := make([][]string, 0, len(ans.Spans))
	for _, s := range ans.Spans {
		rows = append(rows, []string{key, s.Span, s.Mode, s.State, dash(s.Node), dash(s.Dispatcher),
			strconv.FormatUint(ans.Epoch, 10), dash(s.Operator)})
	}
	if err := env.printTable([]string{"KEY", "SPAN", "MODE", "STATE", "NODE", "DISPATCHER", "EPOCH", "OPERATOR"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(env.out, "(changefeed %s, maintainer %s at epoch %d)\n", cf, ans.Maintainer, ans.Epoch)
	return nil
}

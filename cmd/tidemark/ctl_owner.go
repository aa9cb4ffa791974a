package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/server"
	"github.com/tidemark/tidemark/span"
)

func newOwnerCmd(f *ctlFlags) *cobra.Command {
	var cf string
	cmd := &cobra.Command{
		Use:   "owner KEY",
		Short: "Show which node and dispatcher own a key now, with the maintainer's epoch",
		Long: "owner asks the changefeed's maintainer which span holds KEY and which node and dispatcher serve\n" +
			"it now (one per mode), so an application can route work for the key to its owner.\n" +
			"For a changefeed of the etcd dispatcher KEY is a source etcd key, as it is (e.g. /registry/pods/x);\n" +
			"the answer names the table (source key range) and the span's source sub-range. For other\n" +
			"changefeeds KEY is t<ID> (the first key of table ID), t<ID>:<HEX> (a key inside table ID: t<ID>\n" +
			"then the hex bytes) or 0x<HEX> (a whole key in hex, as `ctl spans --json` prints keys).\n" +
			"Without --changefeed, the changefeed whose keys hold KEY is found. The answer holds for the\n" +
			"epoch it names: after a failover or a move, ask again.",
		Example: "  tidemark ctl owner t42\n  tidemark ctl owner t42:00ff --changefeed orders --json\n" +
			"  tidemark ctl owner /registry/pods/default/web-0",
		Args: exactArgs(1, "one argument, the key"),
		RunE: func(c *cobra.Command, args []string) error {
			return withCtl(c, f, func(ctx context.Context, env *ctlEnv) error { return showOwner(ctx, env, cf, args[0]) })
		},
	}
	cmd.Flags().StringVar(&cf, "changefeed", "", "changefeed (default: the one whose keys hold KEY)")
	return cmd
}

// ownerChangefeed picks the changefeed to ask about key: the named one (whose kind says how
// to read the key), else the one changefeed that can hold it: an etcd changefeed whose source
// key ranges hold it, or, for a key of the t<ID> forms, a changefeed of another kind.
func ownerChangefeed(ctx context.Context, env *ctlEnv, name, key string) (string, error) {
	_, parseErr := span.ParseKey(key)
	if name != "" {
		info, err := etcdutil.GetChangefeed(ctx, env.cli, env.keys, name)
		if err != nil {
			return "", notFoundHint(name, err)
		}
		if info.DispatcherKind() != etcdutil.EtcdDispatcher && parseErr != nil {
			return "", &usageError{err: parseErr}
		}
		return name, nil
	}
	infos, err := etcdutil.ListChangefeeds(ctx, env.cli, env.keys)
	if err != nil {
		return "", fmt.Errorf("cannot list changefeeds: %w", err)
	}
	if len(infos) == 0 {
		return "", errors.New("the cluster has no changefeed; create one with `tidemark ctl changefeed create`")
	}
	var hits, sources []string
	for _, info := range infos {
		if info.DispatcherKind() == etcdutil.EtcdDispatcher && info.Source != nil {
			if _, _, ok := etcdcdc.SpanKeyOf(info.Source, []byte(key)); ok {
				hits = append(hits, info.ID)
			}
			sources = append(sources, info.ID)
		} else if parseErr == nil {
			hits = append(hits, info.ID)
		}
	}
	switch {
	case len(hits) == 1:
		return hits[0], nil
	case len(hits) > 1:
		return "", usagef("key %q is in %d changefeeds (%s); name one with --changefeed", key, len(hits), strings.Join(hits, ", "))
	case len(sources) == 0:
		return "", &usageError{err: parseErr}
	}
	return "", fmt.Errorf("key %q is not covered by any changefeed: no source key range of %s holds it",
		key, strings.Join(sources, ", "))
}

func showOwner(ctx context.Context, env *ctlEnv, name, key string) error {
	cf, err := ownerChangefeed(ctx, env, name, key)
	if err != nil {
		return err
	}
	var ans server.OwnerResponse
	if err := env.maintainerGet(ctx, cf, "/api/v1/changefeeds/"+cf+"/owner?key="+url.QueryEscape(key), &ans); err != nil {
		return err
	}
	if env.json {
		return env.printJSON(ans)
	}
	header := []string{"KEY", "SPAN", "MODE", "STATE", "NODE", "DISPATCHER", "EPOCH", "OPERATOR"}
	if ans.TableRange != nil {
		header = append(header, "SOURCE RANGE")
	}
	rows := make([][]string, 0, len(ans.Spans))
	for _, s := range ans.Spans {
		row := []string{key, s.Span, s.Mode, s.State, dash(s.Node), dash(s.Dispatcher), strconv.FormatUint(ans.Epoch, 10), dash(s.Operator)}
		if ans.TableRange != nil {
			row = append(row, formatRange(s.SourceRange))
		}
		rows = append(rows, row)
	}
	if err := env.printTable(header, rows); err != nil {
		return err
	}
	fmt.Fprintf(env.out, "(changefeed %s, maintainer %s at epoch %d)\n", cf, ans.Maintainer, ans.Epoch)
	return nil
}

// formatRange prints a source key range as [start, end), end ∞ when unbounded.
func formatRange(r *server.SourceKeyRange) string {
	if r == nil {
		return "-"
	}
	end := "∞"
	if r.End != "" {
		end = strconv.Quote(r.End)
	}
	return "[" + strconv.Quote(r.Start) + ", " + end + ")"
}

package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tidemark/tidemark/api"
)

// spansFlags are the flags of `ctl spans`.
type spansFlags struct {
	changefeed, node, state, mode string
	table                         int64
	limit                         int
}

// spansJSON is the --json output of `ctl spans`.
type spansJSON struct {
	Changefeed string         `json:"changefeed"`
	Matched    int            `json:"matched"`
	Spans      []api.SpanInfo `json:"spans"`
}

func newSpansCmd(f *ctlFlags) *cobra.Command {
	var sf spansFlags
	cmd := &cobra.Command{
		Use:   "spans",
		Short: "List a changefeed's spans, from its maintainer",
		Example: "  tidemark ctl spans\n  tidemark ctl spans --node node-2 --state replicating --limit 0\n" +
			"  tidemark ctl spans --state error   # spans whose dispatcher reports an error, with the message",
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			switch sf.state {
			case "", "absent", "scheduling", "replicating", "error":
			default:
				return usagef("--state %q: want absent, scheduling, replicating or error", sf.state)
			}
			switch sf.mode {
			case "", "default", "redo":
			default:
				return usagef("--mode %q: want default or redo", sf.mode)
			}
			if sf.limit < 0 {
				return usagef("--limit %d: want 0 (all) or more", sf.limit)
			}
			return withCtl(c, f, func(ctx context.Context, env *ctlEnv) error { return listSpans(ctx, env, sf) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&sf.changefeed, "changefeed", "", "changefeed (default: the only one)")
	fl.StringVar(&sf.node, "node", "", "only spans on this node")
	fl.StringVar(&sf.state, "state", "", "only spans in this state: absent, scheduling, replicating, error (replicating, but its dispatcher reports an error)")
	fl.StringVar(&sf.mode, "mode", "", "only spans of this mode: default, redo")
	fl.Int64Var(&sf.table, "table", -1, "only spans of this table")
	fl.IntVar(&sf.limit, "limit", 1000, "print at most this many spans (0: all)")
	return cmd
}

func listSpans(ctx context.Context, env *ctlEnv, sf spansFlags) error {
	cf, err := pickChangefeed(ctx, env, sf.changefeed)
	if err != nil {
		return err
	}
	v := url.Values{}
	for k, val := range map[string]string{"node": sf.node, "state": sf.state, "mode": sf.mode} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if sf.table >= 0 {
		v.Set("table", strconv.FormatInt(sf.table, 10))
	}
	out := spansJSON{Changefeed: cf, Spans: []api.SpanInfo{}}
	for cursor := 0; ; {
		page := 10000
		if sf.limit > 0 {
			page = min(page, sf.limit-len(out.Spans))
		}
		v.Set("limit", strconv.Itoa(page))
		v.Set("cursor", strconv.Itoa(cursor))
		var p api.SpanPage
		if err := env.maintainerGet(ctx, cf, "/api/v1/changefeeds/"+cf+"/spans?"+v.Encode(), &p); err != nil {
			return err
		}
		out.Matched = p.Matched
		out.Spans = append(out.Spans, p.Spans...)
		if p.Next == 0 || (sf.limit > 0 && len(out.Spans) >= sf.limit) {
			break
		}
		cursor = p.Next
	}
	if env.json {
		return env.printJSON(out)
	}
	header := []string{"SPAN", "MODE", "STATE", "NODE", "DISPATCHER", "CHECKPOINT-TS", "OPERATOR"}
	withErr := slices.ContainsFunc(out.Spans, func(s api.SpanInfo) bool { return s.Error != "" })
	if withErr {
		header = append(header, "ERROR") // only then: a healthy listing keeps its columns
	}
	rows := make([][]string, 0, len(out.Spans))
	for _, s := range out.Spans {
		row := []string{s.Span, s.Mode, s.State, dash(s.Node), dash(s.Dispatcher),
			strconv.FormatUint(s.Checkpoint, 10), dash(s.Operator)}
		if withErr {
			row = append(row, dash(s.Error))
		}
		rows = append(rows, row)
	}
	if err := env.printTable(header, rows); err != nil {
		return err
	}
	if len(out.Spans) < out.Matched {
		fmt.Fprintf(env.out, "(%d of %d spans shown; raise --limit, 0 for all)\n", len(out.Spans), out.Matched)
	}
	return nil
}

func newOperatorsCmd(f *ctlFlags) *cobra.Command {
	var cf, kind string
	cmd := &cobra.Command{
		Use:     "operators",
		Short:   "List a changefeed's operators in flight, from its maintainer",
		Example: "  tidemark ctl operators\n  tidemark ctl operators --kind move --json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return withCtl(c, f, func(ctx context.Context, env *ctlEnv) error {
				id, err := pickChangefeed(ctx, env, cf)
				if err != nil {
					return err
				}
				ops := []api.OperatorInfo{}
				path := "/api/v1/changefeeds/" + id + "/operators"
				if kind != "" {
					path += "?kind=" + url.QueryEscape(kind)
				}
				if err := env.maintainerGet(ctx, id, path, &ops); err != nil {
					return err
				}
				if env.json {
					return env.printJSON(ops)
				}
				rows := make([][]string, 0, len(ops))
				for _, op := range ops {
					rows = append(rows, []string{op.ID, strings.TrimPrefix(op.Kind, "Op"), strings.Join(op.Spans, ","), op.Mode,
						dash(op.Phase), strings.Join(op.Nodes, ","), strconv.FormatFloat(op.AgeSeconds, 'f', 1, 64) + "s"})
				}
				return env.printTable([]string{"ID", "KIND", "SPANS", "MODE", "PHASE", "NODES", "AGE"}, rows)
			})
		},
	}
	cmd.Flags().StringVar(&cf, "changefeed", "", "changefeed (default: the only one)")
	cmd.Flags().StringVar(&kind, "kind", "", "only operators of this kind: add, remove, move, split, merge")
	return cmd
}

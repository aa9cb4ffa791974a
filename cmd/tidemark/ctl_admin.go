package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/span"
)

// drainDefaultTimeout replaces the 5s default of --timeout for drain, which waits for spans to move.
const drainDefaultTimeout = time.Minute

// adminJSON is the --json output of the admin commands.
type adminJSON struct {
	Request    string        `json:"request"`
	Changefeed string        `json:"changefeed"`
	Kind       admin.Kind    `json:"kind"`
	Outcome    admin.Outcome `json:"outcome"`
	Message    string        `json:"message"`
	Reason     admin.Reason  `json:"reason,omitempty"`
	Advice     string        `json:"advice,omitempty"` // what to type about a refusal (the CLI's words)
	Maintainer string        `json:"maintainer"`
	Epoch      uint64        `json:"epoch"`
}

func toAdminJSON(req etcdutil.AdminRequest, r etcdutil.AdminResult) adminJSON {
	return adminJSON{Request: r.ID, Changefeed: r.Changefeed, Kind: r.Kind, Outcome: r.Outcome,
		Message: r.Message, Reason: r.Reason, Advice: adviceFor(req, r), Maintainer: r.Maintainer, Epoch: r.Epoch}
}

// runSpanAdmin submits req for changefeed cf (or the only one) and prints the maintainer's answer.
func runSpanAdmin(c *cobra.Command, f *ctlFlags, cf string, req etcdutil.AdminRequest) error {
	return withCtl(c, f, func(ctx context.Context, env *ctlEnv) error {
		id, err := pickChangefeed(ctx, env, cf)
		if err != nil {
			return err
		}
		req.Changefeed = id
		res, err := submitAdmin(ctx, env, req)
		if err != nil {
			return err
		}
		return reportAdmin(env, req, res)
	})
}

// submitAdmin queues req and waits for its result within ctx. A request nobody answered is
// withdrawn, so it cannot run later by surprise.
func submitAdmin(ctx context.Context, env *ctlEnv, req etcdutil.AdminRequest) (etcdutil.AdminResult, error) {
	req.ID = etcdutil.NewAdminID(time.Now())
	ttl := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		ttl += time.Until(dl)
	}
	if err := etcdutil.SubmitAdminRequest(ctx, env.cli, env.keys, req, ttl); err != nil {
		return etcdutil.AdminResult{}, fmt.Errorf("cannot queue the %s request: %w", req.Kind, err)
	}
	res, err := etcdutil.WaitAdminResult(ctx, env.cli, env.keys, req.ID)
	if err != nil {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = etcdutil.WithdrawAdminRequest(wctx, env.cli, env.keys, req.ID)
		return res, fmt.Errorf("no answer to the %s request from the maintainer of %s; the request was withdrawn. "+
			"Check that the changefeed runs and has a maintainer (`tidemark ctl status`), or raise --timeout: %w",
			req.Kind, req.Changefeed, err)
	}
	return res, nil
}

// reportAdmin prints a result; a refusal or failure is an error (exit 1) after the output.
func reportAdmin(env *ctlEnv, req etcdutil.AdminRequest, res etcdutil.AdminResult) error {
	if env.json {
		if err := env.printJSON(toAdminJSON(req, res)); err != nil {
			return err
		}
	} else if res.Outcome == admin.Done {
		fmt.Fprintf(env.out, "%s: %s\n", res.Outcome, res.Message)
	}
	if res.Outcome != admin.Done {
		return fmt.Errorf("%s %s: %s", res.Kind, res.Outcome, withAdvice(req, res))
	}
	return nil
}

// checkSpanArgs parses span names early, so a typo is a usage error before anything is queued.
func checkSpanArgs(args []string) error {
	for _, a := range args {
		if _, err := span.ParseName(a); err != nil {
			return &usageError{err: fmt.Errorf("%w (name spans as `tidemark ctl spans` prints them)", err)}
		}
	}
	return nil
}

func newMoveCmd(f *ctlFlags) *cobra.Command {
	var to, cf string
	cmd := &cobra.Command{
		Use:     "move SPAN --to NODE",
		Short:   "Move a span (every mode of it) to a node, through the maintainer",
		Example: "  tidemark ctl move 42 --to node-2\n  tidemark ctl move 42:74000000000000002a-74000000000000002a80 --to node-2",
		Args:    exactArgs(1, "one span (TABLE or TABLE:STARTHEX-ENDHEX, as `tidemark ctl spans` prints)"),
		RunE: func(c *cobra.Command, args []string) error {
			if to == "" {
				return usagef("--to NODE is required; list nodes with `tidemark ctl nodes`")
			}
			if err := checkSpanArgs(args); err != nil {
				return err
			}
			return runSpanAdmin(c, f, cf, etcdutil.AdminRequest{Kind: admin.Move, Spans: args, Node: to})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "destination node (required)")
	cmd.Flags().StringVar(&cf, "changefeed", "", "changefeed of the span (default: the only one)")
	return cmd
}

func newSplitCmd(f *ctlFlags) *cobra.Command {
	var cf string
	var pieces int
	cmd := &cobra.Command{
		Use:     "split SPAN [--pieces K]",
		Short:   "Split a span into K pieces, through the maintainer",
		Example: "  tidemark ctl split 42 --pieces 4",
		Args:    exactArgs(1, "one span (TABLE or TABLE:STARTHEX-ENDHEX)"),
		RunE: func(c *cobra.Command, args []string) error {
			if pieces == 1 || pieces < 0 || pieces > etcdutil.MaxSplitPieces {
				return usagef("--pieces %d: want 2 to %d (0: the changefeed's split_pieces)", pieces, etcdutil.MaxSplitPieces)
			}
			if err := checkSpanArgs(args); err != nil {
				return err
			}
			return runSpanAdmin(c, f, cf, etcdutil.AdminRequest{Kind: admin.Split, Spans: args, Pieces: pieces})
		},
	}
	cmd.Flags().IntVar(&pieces, "pieces", 0, "how many spans to make (default: the changefeed's split_pieces)")
	cmd.Flags().StringVar(&cf, "changefeed", "", "changefeed of the span (default: the only one)")
	return cmd
}

func newMergeCmd(f *ctlFlags) *cobra.Command {
	var cf string
	cmd := &cobra.Command{
		Use:     "merge SPAN SPAN...",
		Short:   "Merge adjacent spans of one table into one, through the maintainer",
		Example: "  tidemark ctl merge 42:74000000000000002a-74000000000000002a80 42:74000000000000002a80-74000000000000002b",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usagef("%q takes two or more adjacent spans of one table, got %d", c.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkSpanArgs(args); err != nil {
				return err
			}
			return runSpanAdmin(c, f, cf, etcdutil.AdminRequest{Kind: admin.Merge, Spans: args})
		},
	}
	cmd.Flags().StringVar(&cf, "changefeed", "", "changefeed of the spans (default: the only one)")
	return cmd
}

// pickChangefeed returns name when given (checking it exists), else the only changefeed.
func pickChangefeed(ctx context.Context, env *ctlEnv, name string) (string, error) {
	if name != "" {
		if _, err := etcdutil.GetChangefeed(ctx, env.cli, env.keys, name); err != nil {
			return "", notFoundHint(name, err)
		}
		return name, nil
	}
	infos, err := etcdutil.ListChangefeeds(ctx, env.cli, env.keys)
	if err != nil {
		return "", fmt.Errorf("cannot list changefeeds: %w", err)
	}
	switch len(infos) {
	case 0:
		return "", errors.New("the cluster has no changefeed; create one with `tidemark ctl changefeed create`")
	case 1:
		return infos[0].ID, nil
	}
	ids := make([]string, 0, len(infos))
	for _, i := range infos {
		ids = append(ids, i.ID)
	}
	return "", usagef("the cluster has %d changefeeds (%v); name one with --changefeed", len(ids), ids)
}

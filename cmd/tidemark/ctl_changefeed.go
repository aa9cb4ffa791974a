package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/ts"
)

// createFlags are the flags of `ctl changefeed create`.
type createFlags struct {
	tables, loads                  string
	startTs                        uint64
	redo                           bool
	makeBeforeBreak                bool
	splitThreshold, mergeThreshold uint64
	splitPieces                    uint32
	source                         sourceFlags
}

func newChangefeedCmd(f *ctlFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "changefeed", Short: "Create, list, show, update, pause, resume and remove changefeeds"}
	makeGroup(cmd)
	cmd.AddCommand(newCreateCmd(f), newListCmd(f), newGetCmd(f), newUpdateCmd(f),
		newStateCmd(f, "pause", etcdutil.StatePaused, "Pause a changefeed: every node stops its dispatchers and its maintainer"),
		newStateCmd(f, "resume", etcdutil.StateNormal, "Resume a paused changefeed"), newRemoveCmd(f))
	return cmd
}

func newCreateCmd(f *ctlFlags) *cobra.Command {
	var cf createFlags
	cmd := &cobra.Command{
		Use:   "create NAME --tables LIST",
		Short: "Create a changefeed over a list of tables",
		Example: "  tidemark ctl changefeed create orders --tables 1-100,200\n" +
			"  tidemark ctl changefeed create hot --tables 1-4 --load 1=9000 --redo \\\n" +
			"    --split-threshold 5000 --merge-threshold 500 --split-pieces 4",
		Args: exactArgs(1, "one argument, the changefeed name"),
		RunE: func(c *cobra.Command, args []string) error {
			info, err := buildChangefeedInfo(args[0], cf, time.Now())
			if err != nil {
				return err
			}
			return withCtl(c, f, func(ctx context.Context, env *ctlEnv) error {
				if info.Source != nil && cf.startTs == 0 {
					// ts are source revisions for this kind: start at the source's present.
					if info.StartTs, err = sourceStartRevision(ctx, info.Source); err != nil {
						return err
					}
				}
				return createChangefeed(ctx, env, info)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cf.tables, "tables", "", "table IDs and inclusive ranges, e.g. 1-100,200 (required)")
	fl.StringVar(&cf.loads, "load", "", "per-table load figures, e.g. 7=5000,9=200")
	fl.Uint64Var(&cf.startTs, "start-ts", 0, "start ts (default: now)")
	fl.BoolVar(&cf.redo, "redo", false, "run a redo dispatcher beside every default one")
	fl.BoolVar(&cf.makeBeforeBreak, "make-before-break", true,
		"moves prepare the destination before stopping the origin, when the dispatcher kind can prepare (the etcd one can);\n"+
			"--make-before-break=false stops the origin first, and the span replicates nothing until the destination starts")
	fl.Uint64Var(&cf.splitThreshold, "split-threshold", 0, "split a span whose load (events/s) is above this (0: never)")
	fl.Uint64Var(&cf.mergeThreshold, "merge-threshold", 0, "merge adjacent spans whose load is below this (0: never)")
	fl.Uint32Var(&cf.splitPieces, "split-pieces", 0, "how many pieces a split makes (default 2)")
	cf.source.register(fl)
	return cmd
}

// buildChangefeedInfo turns the create flags into a checked ChangefeedInfo. Its errors are
// usage errors: nothing has been written yet.
func buildChangefeedInfo(name string, cf createFlags, now time.Time) (etcdutil.ChangefeedInfo, error) {
	if cf.source.dispatcher == etcdutil.EtcdDispatcher {
		info := etcdutil.ChangefeedInfo{ID: name, StartTs: cf.startTs, Redo: cf.redo, SplitLoadThreshold: cf.splitThreshold,
			MergeLoadThreshold: cf.mergeThreshold, SplitPieces: cf.splitPieces, CreatedAt: now.UTC(),
			MakeBeforeBreak: cf.makeBeforeBreak}
		if cf.loads != "" {
			return etcdutil.ChangefeedInfo{}, usagef("--load: the etcd dispatcher measures its load")
		}
		info.Normalize()
		return info, cf.source.apply(&info, cf.tables != "")
	}
	if cf.tables == "" {
		return etcdutil.ChangefeedInfo{}, usagef("--tables is required, e.g. --tables 1-100,200")
	}
	ids, err := parseTables(cf.tables)
	if err != nil {
		return etcdutil.ChangefeedInfo{}, usagef("--tables: %w", err)
	}
	loads, err := parseLoads(cf.loads, ids)
	if err != nil {
		return etcdutil.ChangefeedInfo{}, usagef("--load: %w", err)
	}
	info := etcdutil.ChangefeedInfo{
		ID:                 name,
		StartTs:            cf.startTs,
		Redo:               cf.redo,
		SplitLoadThreshold: cf.splitThreshold,
		MergeLoadThreshold: cf.mergeThreshold,
		SplitPieces:        cf.splitPieces,
		MakeBeforeBreak:    cf.makeBeforeBreak,
		CreatedAt:          now.UTC(),
	}
	if err := etcdutil.ValidateID("dispatcher kind", cf.source.dispatcher); err != nil {
		return etcdutil.ChangefeedInfo{}, usagef("--dispatcher: %w", err)
	}
	if info.StartTs == 0 {
		info.StartTs = ts.FromTime(now)
	}
	for _, id := range ids {
		info.Tables = append(info.Tables, etcdutil.TableInfo{ID: id, Load: loads[id]})
	}
	if err := cf.source.apply(&info, false); err != nil {
		return etcdutil.ChangefeedInfo{}, err
	}
	info.Normalize()
	if err := info.Validate(); err != nil {
		return etcdutil.ChangefeedInfo{}, &usageError{err: err}
	}
	return info, nil
}

func createChangefeed(ctx context.Context, env *ctlEnv, info etcdutil.ChangefeedInfo) error {
	err := etcdutil.CreateChangefeed(ctx, env.cli, env.keys, info)
	if errors.Is(err, etcdutil.ErrExists) {
		return fmt.Errorf("changefeed %s already exists; pick another name or remove it first with `tidemark ctl changefeed remove %s`",
			info.ID, info.ID)
	}
	if err != nil {
		return fmt.Errorf("cannot create changefeed %s: %w", info.ID, err)
	}
	if env.json {
		return env.printJSON(changefeedJSON(info))
	}
	fmt.Fprintf(env.out, "created changefeed %s with %d tables from ts %d, dispatcher kind %s; watch it with `tidemark ctl status`\n",
		info.ID, len(info.Tables), info.StartTs, info.DispatcherKind())
	return nil
}

func newListCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the changefeeds",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return withCtl(c, f, listChangefeeds)
		},
	}
}

// cfJSON is one changefeed in `changefeed list --json` and `changefeed create --json`.
type cfJSON struct {
	ID                 string    `json:"id"`
	Tables             int       `json:"tables"`
	StartTs            uint64    `json:"start_ts"`
	Redo               bool      `json:"redo"`
	State              string    `json:"state"`
	SplitLoadThreshold uint64    `json:"split_load_threshold"`
	MergeLoadThreshold uint64    `json:"merge_load_threshold"`
	SplitPieces        uint32    `json:"split_pieces"`
	Dispatcher         string    `json:"dispatcher"`
	CreatedAt          time.Time `json:"created_at"`
}

func changefeedJSON(i etcdutil.ChangefeedInfo) cfJSON {
	return cfJSON{ID: i.ID, Tables: len(i.Tables), StartTs: i.StartTs, Redo: i.Redo, State: i.State,
		SplitLoadThreshold: i.SplitLoadThreshold, MergeLoadThreshold: i.MergeLoadThreshold,
		SplitPieces: i.SplitPieces, Dispatcher: i.DispatcherKind(), CreatedAt: i.CreatedAt}
}

func listChangefeeds(ctx context.Context, env *ctlEnv) error {
	infos, err := etcdutil.ListChangefeeds(ctx, env.cli, env.keys)
	if err != nil {
		return fmt.Errorf("cannot list changefeeds: %w", err)
	}
	if env.json {
		out := make([]cfJSON, 0, len(infos))
		for _, i := range infos {
			out = append(out, changefeedJSON(i))
		}
		return env.printJSON(out)
	}
	rows := make([][]string, 0, len(infos))
	for _, i := range infos {
		rows = append(rows, []string{i.ID, strconv.Itoa(len(i.Tables)), strconv.FormatUint(i.StartTs, 10),
			strconv.FormatBool(i.Redo), i.State, fmtTime(i.CreatedAt)})
	}
	return env.printTable([]string{"NAME", "TABLES", "START-TS", "REDO", "STATE", "CREATED"}, rows)
}

func newRemoveCmd(f *ctlFlags) *cobra.Command {
	var noWait bool
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a changefeed; its maintainer stops and its dispatchers are removed",
		Long: "Remove a changefeed; its maintainer stops and its dispatchers are removed.\n\n" +
			"It returns once every live node says it no longer runs the changefeed (within --timeout; --no-wait returns at once).",
		Args: exactArgs(1, "one argument, the changefeed name"),
		RunE: func(c *cobra.Command, args []string) error {
			return withCtl(c, f, func(ctx context.Context, env *ctlEnv) error {
				return removeChangefeed(ctx, env, args[0], !noWait)
			})
		},
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the definition is deleted, without waiting for the nodes to stop")
	return cmd
}

func removeChangefeed(ctx context.Context, env *ctlEnv, name string, wait bool) error {
	// Look it up first: removing a name that does not exist is almost always a typo, and saying
	// so beats a silent success.
	if _, err := etcdutil.GetChangefeed(ctx, env.cli, env.keys, name); err != nil {
		return notFoundHint(name, err)
	}
	if err := etcdutil.RemoveChangefeed(ctx, env.cli, env.keys, name); err != nil {
		return notFoundHint(name, err)
	}
	if wait {
		if err := waitStopped(ctx, env, name); err != nil {
			return err
		}
	}
	if env.json {
		return env.printJSON(map[string]string{"removed": name})
	}
	fmt.Fprintf(env.out, "removed changefeed %s\n", name)
	return nil
}

// notFoundHint turns ErrNotFound into an error that says how to find the right name.
func notFoundHint(name string, err error) error {
	if errors.Is(err, etcdutil.ErrNotFound) {
		return fmt.Errorf("changefeed %s not found; list them with `tidemark ctl changefeed list`", name)
	}
	return fmt.Errorf("changefeed %s: %w", name, err)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tidemark/tidemark/etcdutil"
)

// updateAttempts bounds the read-modify-write retries of update, pause and resume.
const updateAttempts = 5

// cfDetailJSON is the --json output of `changefeed get`.
type cfDetailJSON struct {
	cfJSON
	TableIDs []etcdutil.TableInfo       `json:"table_list"`
	Status   *etcdutil.ChangefeedStatus `json:"status,omitempty"`
	Drained  []string                   `json:"drained_nodes"`
}

func newGetCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show one changefeed: definition, maintainer and span counts",
		Args:  exactArgs(1, "one argument, the changefeed name"),
		RunE: func(c *cobra.Command, args []string) error {
			return withCtl(c, f, func(ctx context.Context, env *ctlEnv) error { return getChangefeed(ctx, env, args[0]) })
		},
	}
}

func getChangefeed(ctx context.Context, env *ctlEnv, name string) error {
	info, err := etcdutil.GetChangefeed(ctx, env.cli, env.keys, name)
	if err != nil {
		return notFoundHint(name, err)
	}
	d := cfDetailJSON{cfJSON: changefeedJSON(info), TableIDs: info.Tables}
	if st, err := etcdutil.GetStatus(ctx, env.cli, env.keys, name); err == nil {
		d.Status = &st
	} else if !errors.Is(err, etcdutil.ErrNotFound) {
		return fmt.Errorf("cannot read the status of changefeed %s: %w", name, err)
	}
	if d.Drained, err = etcdutil.ListDrained(ctx, env.cli, env.keys); err != nil {
		return err
	}
	if env.json {
		return env.printJSON(d)
	}
	rows := [][]string{
		{"name", info.ID}, {"state", info.State}, {"tables", fmt.Sprintf("%d (%s)", len(info.Tables), tableList(info.Tables))},
		{"start-ts", strconv.FormatUint(info.StartTs, 10)}, {"redo", strconv.FormatBool(info.Redo)},
		{"dispatcher", info.DispatcherKind()},
		{"split-threshold", strconv.FormatUint(info.SplitLoadThreshold, 10)},
		{"merge-threshold", strconv.FormatUint(info.MergeLoadThreshold, 10)},
		{"split-pieces", strconv.FormatUint(uint64(info.SplitPieces), 10)},
		{"make-before-break", strconv.FormatBool(info.MakeBeforeBreak)}, {"created", fmtTime(info.CreatedAt)},
	}
	if src := info.Source; src != nil {
		rows = append(rows, []string{"source", fmt.Sprintf("%s: %s", strings.Join(src.Endpoints, ","), src.Describe())})
	}
	if k := info.Sink; k != nil {
		sink := k.Kind
		if k.Kind == etcdutil.SinkEtcd {
			sink = fmt.Sprintf("etcd %s under %q", strings.Join(k.Endpoints, ","), k.Prefix)
		}
		rows = append(rows, []string{"sink", sink})
	}
	if st := d.Status; st != nil {
		rows = append(rows, []string{"maintainer", fmt.Sprintf("%s (epoch %d)", st.Maintainer, st.Epoch)},
			[]string{"checkpoint-ts", strconv.FormatUint(st.CheckpointTs, 10)},
			[]string{"spans", fmt.Sprintf("%d replicating, %d scheduling, %d absent", st.Spans["replicating"], st.Spans["scheduling"], st.Spans["absent"])},
			[]string{"operators", strconv.Itoa(st.Operators)})
	} else {
		rows = append(rows, []string{"maintainer", "- (none has published a status yet)"})
	}
	return env.printTable([]string{"FIELD", "VALUE"}, rows)
}

// tableList prints table IDs compactly: runs as LO-HI.
func tableList(ts []etcdutil.TableInfo) string {
	var parts []string
	for i := 0; i < len(ts); {
		j := i
		for j+1 < len(ts) && ts[j+1].ID == ts[j].ID+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", ts[i].ID, ts[j].ID))
		} else {
			parts = append(parts, strconv.FormatInt(ts[i].ID, 10))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func newUpdateCmd(f *ctlFlags) *cobra.Command {
	var cf createFlags
	cmd := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Change a changefeed's tables, redo, thresholds or move mode; only the flags given change",
		Example: "  tidemark ctl changefeed update orders --tables 1-120\n" +
			"  tidemark ctl changefeed update orders --split-threshold 8000 --merge-threshold 800\n" +
			"  tidemark ctl changefeed update orders --make-before-break   # a changefeed created before it was the default",
		Args: exactArgs(1, "one argument, the changefeed name"),
		RunE: func(c *cobra.Command, args []string) error {
			fl := c.Flags()
			if fl.Changed("start-ts") {
				return usagef("--start-ts cannot change after creation; create a new changefeed instead")
			}
			changed := false
			for _, n := range updatableFlags {
				changed = changed || fl.Changed(n)
			}
			if !changed {
				return usagef("nothing to update; give at least one of --%s", strings.Join(updatableFlags, ", --"))
			}
			return withCtl(c, f, func(ctx context.Context, env *ctlEnv) error {
				return modifyChangefeed(ctx, env, args[0], "updated", func(info *etcdutil.ChangefeedInfo) error {
					return applyUpdate(info, cf, fl.Changed)
				})
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cf.tables, "tables", "", "replace the table list, e.g. 1-100,200")
	fl.StringVar(&cf.loads, "load", "", "per-table load figures, e.g. 7=5000 (tables not named keep theirs)")
	fl.Uint64Var(&cf.startTs, "start-ts", 0, "not updatable")
	fl.BoolVar(&cf.redo, "redo", false, "run a redo dispatcher beside every default one")
	fl.Uint64Var(&cf.splitThreshold, "split-threshold", 0, "split a span whose load is above this (0: never)")
	fl.Uint64Var(&cf.mergeThreshold, "merge-threshold", 0, "merge adjacent spans whose load is below this (0: never)")
	fl.Uint32Var(&cf.splitPieces, "split-pieces", 0, "how many pieces a split makes")
	fl.BoolVar(&cf.makeBeforeBreak, "make-before-break", true,
		"moves prepare the destination first (=false: stop the origin first); moves that start afterwards use it")
	return cmd
}

// updatableFlags are the update flags applyUpdate applies; one of them must be given.
var updatableFlags = []string{"tables", "load", "redo", "split-threshold", "merge-threshold", "split-pieces", "make-before-break"}

// applyUpdate changes info by the flags that were given. Errors are usage errors.
func applyUpdate(info *etcdutil.ChangefeedInfo, cf createFlags, changed func(string) bool) error {
	if changed("tables") {
		ids, err := parseTables(cf.tables)
		if err != nil {
			return usagef("--tables: %w", err)
		}
		old := make(map[int64]uint64, len(info.Tables))
		for _, t := range info.Tables {
			old[t.ID] = t.Load
		}
		info.Tables = info.Tables[:0:0]
		for _, id := range ids {
			info.Tables = append(info.Tables, etcdutil.TableInfo{ID: id, Load: old[id]})
		}
	}
	if changed("load") {
		ids := make([]int64, 0, len(info.Tables))
		for _, t := range info.Tables {
			ids = append(ids, t.ID)
		}
		loads, err := parseLoads(cf.loads, ids)
		if err != nil {
			return usagef("--load: %w", err)
		}
		for i := range info.Tables {
			if l, ok := loads[info.Tables[i].ID]; ok {
				info.Tables[i].Load = l
			}
		}
	}
	if changed("redo") {
		info.Redo = cf.redo
	}
	if changed("split-threshold") {
		info.SplitLoadThreshold = cf.splitThreshold
	}
	if changed("merge-threshold") {
		info.MergeLoadThreshold = cf.mergeThreshold
	}
	if changed("split-pieces") {
		info.SplitPieces = cf.splitPieces
	}
	if changed("make-before-break") {
		info.MakeBeforeBreak = cf.makeBeforeBreak
	}
	if err := info.Validate(); err != nil {
		return &usageError{err: err}
	}
	return nil
}

// newStateCmd builds pause and resume.
func newStateCmd(f *ctlFlags, verb, state, short string) *cobra.Command {
	var noWait bool
	cmd := &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  exactArgs(1, "one argument, the changefeed name"),
		RunE: func(c *cobra.Command, args []string) error {
			return withCtl(c, f, func(ctx context.Context, env *ctlEnv) error {
				err := modifyChangefeed(ctx, env, args[0], verb+"d", func(info *etcdutil.ChangefeedInfo) error {
					if info.State == state {
						return fmt.Errorf("changefeed %s is already %s", info.ID, state)
					}
					info.State = state
					return nil
				})
				if err != nil || state != etcdutil.StatePaused || noWait {
					return err
				}
				return waitStopped(ctx, env, args[0])
			})
		},
	}
	if state == etcdutil.StatePaused {
		cmd.Long = short + ".\n\nIt returns once every live node says it no longer runs the changefeed, so nothing " +
			"written to the source afterwards is replicated until a resume (within --timeout; --no-wait returns at once)."
		cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the state is stored, without waiting for the nodes to stop")
	}
	return cmd
}

// modifyChangefeed reads, changes and writes back a definition, retrying when another writer
// got in between (the write is a compare-and-swap on the revision read).
func modifyChangefeed(ctx context.Context, env *ctlEnv, name, done string, change func(*etcdutil.ChangefeedInfo) error) error {
	for attempt := 1; ; attempt++ {
		info, err := etcdutil.GetChangefeed(ctx, env.cli, env.keys, name)
		if err != nil {
			return notFoundHint(name, err)
		}
		if err := change(&info); err != nil {
			return err
		}
		err = etcdutil.UpdateChangefeed(ctx, env.cli, env.keys, info)
		if errors.Is(err, etcdutil.ErrConflict) && attempt < updateAttempts {
			continue
		}
		if err != nil {
			return fmt.Errorf("cannot update changefeed %s: %w", name, err)
		}
		if env.json {
			return env.printJSON(changefeedJSON(info))
		}
		fmt.Fprintf(env.out, "%s changefeed %s (state %s, %d tables)\n", done, name, info.State, len(info.Tables))
		return nil
	}
}

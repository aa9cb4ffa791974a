package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil"
)

// ctlFlags are the flags every `tidemark ctl` subcommand shares.
type ctlFlags struct {
	etcd, cluster string
	json          bool
	timeout       time.Duration
}

// ctlEnv is what a ctl subcommand works with: a connected client, the key layout, the output.
type ctlEnv struct {
	cli  *clientv3.Client
	keys etcdutil.Keys
	json bool
	out  io.Writer
}

func newCtlCmd() *cobra.Command {
	f := &ctlFlags{}
	cmd := &cobra.Command{
		Use:   "ctl",
		Short: "Inspect and change a tidemark cluster through etcd",
		Example: "  tidemark ctl status\n" +
			"  tidemark ctl nodes --json\n" +
			"  tidemark ctl changefeed create orders --tables 1-100,200 --load 7=5000\n" +
			"  tidemark ctl changefeed list\n" +
			"  tidemark ctl changefeed remove orders",
	}
	makeGroup(cmd)
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.etcd, "etcd", defaultEtcd, "etcd client URLs, comma-separated")
	pf.StringVar(&f.cluster, "cluster", playgroundCluster, "cluster ID")
	pf.BoolVar(&f.json, "json", false, "print JSON instead of tables")
	pf.DurationVar(&f.timeout, "timeout", 5*time.Second, "deadline for the whole command, including connecting")
	cmd.AddCommand(newNodesCmd(f), newChangefeedCmd(f), newStatusCmd(f))
	return cmd
}

// withCtl validates the shared flags, connects, runs fn under the --timeout deadline and closes.
func withCtl(c *cobra.Command, f *ctlFlags, fn func(ctx context.Context, env *ctlEnv) error) error {
	eps, err := parseEndpoints("etcd", f.etcd)
	if err != nil {
		return err
	}
	if f.cluster == "" || strings.Contains(f.cluster, "/") {
		return usagef("--cluster %q is not a cluster ID; it must be non-empty and contain no '/'", f.cluster)
	}
	if f.timeout <= 0 {
		return usagef("--timeout %s must be above zero", f.timeout)
	}
	ctx, cancel := context.WithTimeout(c.Context(), f.timeout)
	defer cancel()
	cli, err := etcdutil.Connect(ctx, eps, nil, f.timeout)
	if err != nil {
		return fmt.Errorf("%w; is the cluster running? `tidemark playground` starts a local one", err)
	}
	defer func() { _ = cli.Close() }()
	env := &ctlEnv{cli: cli, keys: etcdutil.Keys{Cluster: f.cluster}, json: f.json, out: c.OutOrStdout()}
	if err := fn(ctx, env); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (the command took longer than --timeout %s; raise it if etcd is slow)", err, f.timeout)
		}
		return err
	}
	return nil
}

// printJSON writes v as indented JSON.
func (e *ctlEnv) printJSON(v any) error {
	enc := json.NewEncoder(e.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printTable writes rows under a header, columns aligned.
func (e *ctlEnv) printTable(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fmtTime prints a time for tables; the zero time as "-".
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

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
	etcdTLS       etcdutil.TLSFiles
	apiTLS        etcdutil.TLSFiles // the nodes' HTTPS status API
	json          bool
	timeout       time.Duration
}

// ctlEnv is what a ctl subcommand works with: a connected client, the key layout, the output.
type ctlEnv struct {
	cli       *clientv3.Client
	keys      etcdutil.Keys
	json      bool
	out       io.Writer
	errw      io.Writer // warnings; see errOut()
	apiClient apiClient // the nodes' status API; see api()
}

// errOut is where warnings go: stderr, so that --json output stays parseable.
func (e *ctlEnv) errOut() io.Writer {
	if e.errw == nil {
		return io.Discard
	}
	return e.errw
}

func newCtlCmd() *cobra.Command {
	f := &ctlFlags{}
	cmd := &cobra.Command{
		Use:   "ctl",
		Short: "Inspect and change a tidemark cluster through etcd",
		Example: "  tidemark ctl status --watch\n" +
			"  tidemark ctl nodes --json\n" +
			"  tidemark ctl spans --node node-2 --state replicating\n" +
			"  tidemark ctl move 42 --to node-3\n" +
			"  tidemark ctl drain node-2\n" +
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
	pf.StringVar(&f.etcdTLS.CA, "etcd-ca", "", "CA file to verify etcd's certificate (turns on TLS to etcd)")
	pf.StringVar(&f.etcdTLS.Cert, "etcd-cert", "", "client certificate file for etcd (mutual TLS)")
	pf.StringVar(&f.etcdTLS.Key, "etcd-key", "", "client key file for etcd (mutual TLS)")
	pf.StringVar(&f.apiTLS.CA, "tls-ca", "", "CA of the cluster's node certificates: reach the nodes' status API over HTTPS")
	pf.StringVar(&f.apiTLS.Cert, "tls-cert", "", "client certificate for the status API (ctl.pem of `tidemark certs`)")
	pf.StringVar(&f.apiTLS.Key, "tls-key", "", "client key for the status API")
	cmd.AddCommand(newNodesCmd(f), newChangefeedCmd(f), newStatusCmd(f), newSpansCmd(f), newOperatorsCmd(f),
		newMoveCmd(f), newSplitCmd(f), newMergeCmd(f), newDrainCmd(f), newResignCmd(f), newOwnerCmd(f), newDiffCmd(f))
	return cmd
}

// withCtl validates the shared flags, connects, runs fn under the --timeout deadline and closes.
func withCtl(c *cobra.Command, f *ctlFlags, fn func(ctx context.Context, env *ctlEnv) error) error {
	ctx, cancel := context.WithTimeout(c.Context(), f.timeout)
	defer cancel()
	env, err := connectCtl(ctx, c, f)
	if err != nil {
		return err
	}
	defer func() { _ = env.cli.Close() }()
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

// connectCtl validates the shared flags and connects within --timeout.
func connectCtl(ctx context.Context, c *cobra.Command, f *ctlFlags) (*ctlEnv, error) {
	eps, err := parseEndpoints("etcd", f.etcd)
	if err != nil {
		return nil, err
	}
	if f.cluster == "" || strings.Contains(f.cluster, "/") {
		return nil, usagef("--cluster %q is not a cluster ID; it must be non-empty and contain no '/'", f.cluster)
	}
	if f.timeout <= 0 {
		return nil, usagef("--timeout %s must be above zero", f.timeout)
	}
	tlsCfg, err := etcdutil.ClientTLS(f.etcdTLS)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("--etcd-ca/--etcd-cert/--etcd-key: %w", err)}
	}
	api, err := newAPIClient(f.apiTLS, f.timeout)
	if err != nil {
		return nil, err
	}
	cli, err := etcdutil.Connect(ctx, eps, tlsCfg, f.timeout)
	if err != nil {
		return nil, fmt.Errorf("%w; is the cluster running? `tidemark playground` starts a local one", err)
	}
	return &ctlEnv{cli: cli, keys: etcdutil.Keys{Cluster: f.cluster}, json: f.json, out: c.OutOrStdout(), errw: c.ErrOrStderr(), apiClient: api}, nil
}

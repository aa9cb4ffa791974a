package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/ts"
)

// demoChangefeed is the changefeed the playground creates.
const demoChangefeed = "demo"

// stopGrace is how long the children get to shut down gracefully before they are killed.
const stopGrace = 5 * time.Second

// playgroundFlags are the flags of `tidemark playground`.
type playgroundFlags struct {
	nodes, tables, basePort int
	etcdURL, dir            string
	redo, tls               bool
	dispatcher, sink        string
	// The in-process load of the etcd demo.
	loadRate             float64
	loadKeys, loadEvents int
}

// The demo's keys with --dispatcher etcd: the source prefix in the embedded etcd and, with the
// etcd sink, the prefix its mirror is written under in the same etcd.
const (
	demoSourcePrefix = "/demo/src/"
	demoMirrorPrefix = "/demo/mirror/"
)

func newPlaygroundCmd() *cobra.Command {
	var f playgroundFlags
	cmd := &cobra.Command{
		Use:   "playground",
		Short: "Run a local cluster: embedded etcd, N nodes and a demo changefeed, until Ctrl-C",
		Long: "playground starts an embedded etcd, N `tidemark server` child processes and a changefeed\n" +
			"\"demo\", then prints a status line every second. By default (--dispatcher etcd) demo replicates\n" +
			demoSourcePrefix + " of the embedded etcd, which a built-in load (the code of `tidemark load`) writes\n" +
			"at --load-rate, to a mirror under " + demoMirrorPrefix + " of the same etcd (--sink file: JSON-lines\n" +
			"files), and the status line shows the events replicated per second and the lag; --dispatcher sim\n" +
			"runs simulated dispatchers over --tables tables instead. Kill a child to watch failover;\n" +
			"nothing is restarted. Ctrl-C stops the load, then everything, and removes the temporary\n" +
			"directory (kept when --dir is given).",
		Example: "  tidemark playground\n  tidemark playground --load-rate 1000 --load-events 50000 --sink file\n" +
			"  tidemark playground --dispatcher sim --nodes 5 --tables 200 --redo --dir ./.playground\n  tidemark playground --tls",
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			ctx, stop := signalContext(c.Context())
			defer stop()
			err := runPlayground(ctx, f, c.OutOrStdout())
			if err != nil && ctx.Err() != nil {
				// Ctrl-C while starting up: what failed was cut short on purpose.
				fmt.Fprintf(c.OutOrStdout(), "interrupted while starting (%v); everything started is stopped\n", err)
				return nil
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.nodes, "nodes", 3, "number of server processes")
	fl.IntVar(&f.tables, "tables", 1000, "with --dispatcher sim: number of tables in the demo changefeed (IDs 1..N)")
	fl.StringVar(&f.etcdURL, "etcd-client-url", defaultEtcd, "client URL of the embedded etcd")
	fl.IntVar(&f.basePort, "base-port", 18300, "node i listens on base-port+2i (gRPC) and base-port+2i+1 (HTTP)")
	fl.StringVar(&f.dir, "dir", "", "keep data and logs in this directory (default: a temporary one, removed at exit)")
	fl.BoolVar(&f.redo, "redo", false, "enable redo on the demo changefeed")
	fl.StringVar(&f.dispatcher, "dispatcher", etcdutil.EtcdDispatcher, "the demo's dispatcher: etcd (replicate "+demoSourcePrefix+" of the embedded etcd, written by a load) or sim (simulated ts ranges over --tables)")
	fl.Float64Var(&f.loadRate, "load-rate", defaultLoadRate, "with --dispatcher etcd: events per second the built-in load writes to "+demoSourcePrefix+" (0: no load)")
	fl.IntVar(&f.loadKeys, "load-keys", defaultLoadKeys, "with --dispatcher etcd: distinct keys of the load")
	fl.IntVar(&f.loadEvents, "load-events", 0, "with --dispatcher etcd: stop the load after this many events (0: run until Ctrl-C)")
	fl.StringVar(&f.sink, "sink", etcdutil.SinkEtcd, "with --dispatcher etcd: etcd (a mirror under "+demoMirrorPrefix+") or file (JSON lines in each node's data dir)")
	fl.BoolVar(&f.tls, "tls", false, "mutual TLS between the nodes and HTTPS status APIs, with certificates made in <dir>/certs")
	return cmd
}

// validate checks the flags before anything is started.
func (f *playgroundFlags) validate() error {
	if f.nodes < 1 || f.nodes > 64 {
		return usagef("--nodes %d: want 1 to 64", f.nodes)
	}
	if f.tables < 1 || f.tables > 100_000 {
		return usagef("--tables %d: want 1 to 100000", f.tables)
	}
	if f.basePort < 1024 || f.basePort+2*f.nodes-1 > 65535 {
		return usagef("--base-port %d: the %d ports from it must lie within 1024-65535", f.basePort, 2*f.nodes)
	}
	switch f.dispatcher {
	case etcdutil.DefaultDispatcher, etcdutil.EtcdDispatcher:
	default:
		return usagef("--dispatcher %q: want %s or %s", f.dispatcher, etcdutil.DefaultDispatcher, etcdutil.EtcdDispatcher)
	}
	if f.loadRate < 0 || math.IsNaN(f.loadRate) || math.IsInf(f.loadRate, 0) || f.loadRate > 1e6 {
		return usagef("--load-rate %v: want events per second from 0 (no load) to 1000000", f.loadRate)
	}
	if f.loadKeys < 1 || f.loadEvents < 0 {
		return usagef("--load-keys %d --load-events %d: want at least 1 key and 0 (no end) or more events", f.loadKeys, f.loadEvents)
	}
	if f.sink != etcdutil.SinkEtcd && f.sink != etcdutil.SinkFile {
		return usagef("--sink %q: want %s or %s", f.sink, etcdutil.SinkEtcd, etcdutil.SinkFile)
	}
	u, err := url.Parse(f.etcdURL)
	if err != nil || u.Scheme != "http" || u.Port() == "" || u.Hostname() == "" {
		return usagef("--etcd-client-url %q: want http://HOST:PORT, e.g. %s", f.etcdURL, defaultEtcd)
	}
	if _, err := parseHostPort("etcd-client-url", u.Host); err != nil {
		return err
	}
	return nil
}

// nodePorts returns node i's gRPC and HTTP listen addresses.
func (f *playgroundFlags) nodePorts(i int) (addr, statusAddr string) {
	p := f.basePort + 2*i
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1))
}

// checkPorts fails, naming the port and its user, if any port the playground needs is taken, so
// that nothing is started only to fail half-way.
func (f *playgroundFlags) checkPorts() error {
	u, _ := url.Parse(f.etcdURL) // validated
	want := []struct{ addr, what string }{{u.Host, "the embedded etcd (--etcd-client-url)"}}
	for i := range f.nodes {
		addr, status := f.nodePorts(i)
		want = append(want, struct{ addr, what string }{addr, fmt.Sprintf("gRPC of node %d (--base-port)", i+1)},
			struct{ addr, what string }{status, fmt.Sprintf("HTTP of node %d (--base-port)", i+1)})
	}
	for _, w := range want {
		ln, err := net.Listen("tcp", w.addr)
		if err != nil {
			return fmt.Errorf("port %s for %s is not free (%w); stop what uses it or choose another port", w.addr, w.what, err)
		}
		_ = ln.Close()
	}
	return nil
}

// runPlayground runs the whole playground and always cleans up what it started.
func runPlayground(ctx context.Context, f playgroundFlags, out io.Writer) (err error) {
	if err := f.checkPorts(); err != nil {
		return err
	}
	dir, removeDir, err := playgroundDir(f.dir)
	if err != nil {
		return err
	}
	defer func() {
		if rmErr := removeDir(); rmErr != nil && err == nil {
			err = rmErr
		}
	}()
	var certs playgroundTLS
	if f.tls {
		if certs, err = makePlaygroundCerts(dir, f.nodes); err != nil {
			return err
		}
	}
	stopEtcd, err := startEtcd(filepath.Join(dir, "etcd"), f.etcdURL)
	if err != nil {
		return err
	}
	defer stopEtcd()
	cli, err := etcdutil.Connect(ctx, []string{f.etcdURL}, nil, 10*time.Second)
	if err != nil {
		return fmt.Errorf("embedded etcd at %s does not answer: %w", f.etcdURL, err)
	}
	defer func() { _ = cli.Close() }()
	keys := etcdutil.Keys{Cluster: playgroundCluster}
	if err := createDemo(ctx, cli, keys, f, out); err != nil {
		return err
	}
	children, err := startChildren(f, dir, certs)
	defer func() {
		if killed := stopChildren(children, stopGrace); len(killed) > 0 {
			fmt.Fprintf(out, "killed %v: they did not stop within %s\n", killed, stopGrace)
		}
	}()
	if err != nil {
		return err
	}
	load := startDemoLoad(ctx, cli, keys, f, out)
	printIntro(out, f, dir, certs, children, load)
	var meter *dataPlaneMeter
	if f.dispatcher == etcdutil.EtcdDispatcher {
		client, err := certs.apiClient()
		if err != nil {
			return err
		}
		meter = &dataPlaneMeter{client: client, children: children, load: load}
	}
	watchStatus(ctx, cli, keys, children, meter, out)
	load.wait() // ctx ended: the load stops before the nodes and etcd do
	fmt.Fprintln(out, "stopping: SIGTERM to the nodes, then etcd")
	return nil
}

// playgroundDir returns the directory to work in and how to clean it up: a temporary directory
// is removed, a --dir is kept.
func playgroundDir(dir string) (string, func() error, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, fmt.Errorf("--dir %s cannot be created: %w", dir, err)
		}
		return dir, func() error { return nil }, nil
	}
	tmp, err := os.MkdirTemp("", "tidemark-playground-")
	if err != nil {
		return "", nil, fmt.Errorf("cannot create a temporary directory (%w); pass --dir", err)
	}
	return tmp, func() error {
		if err := os.RemoveAll(tmp); err != nil {
			return fmt.Errorf("cannot remove %s: %w", tmp, err)
		}
		return nil
	}, nil
}

// createDemo creates the demo changefeed; with a reused --dir it may already exist, and then it
// is kept as it is.
func createDemo(ctx context.Context, cli *clientv3.Client, keys etcdutil.Keys, f playgroundFlags, out io.Writer) error {
	// Moves make-before-break, as `ctl changefeed create` does by default.
	info := etcdutil.ChangefeedInfo{ID: demoChangefeed, StartTs: ts.FromTime(time.Now()), Redo: f.redo, CreatedAt: time.Now().UTC(),
		MakeBeforeBreak: true}
	if f.dispatcher == etcdutil.EtcdDispatcher {
		return createEtcdDemo(ctx, cli, keys, f, info, out)
	}
	// A few tables get a much higher load so that the balancer has something to do.
	heavy := map[int]bool{1: true, (f.tables + 1) / 2: true, f.tables: true}
	for id := 1; id <= f.tables; id++ {
		load := uint64(100)
		if heavy[id] {
			load = 5000
		}
		info.Tables = append(info.Tables, etcdutil.TableInfo{ID: int64(id), Load: load})
	}
	return storeDemo(ctx, cli, keys, info, out)
}

// createEtcdDemo creates the demo over the embedded etcd's demoSourcePrefix, from its present
// revision.
func createEtcdDemo(ctx context.Context, cli *clientv3.Client, keys etcdutil.Keys, f playgroundFlags, info etcdutil.ChangefeedInfo, out io.Writer) error {
	resp, err := cli.Get(ctx, "\x00", clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("cannot read the embedded etcd's revision: %w", err)
	}
	info.StartTs, info.Redo = uint64(resp.Header.Revision), false
	info.Dispatcher = etcdutil.EtcdDispatcher
	info.Source = &etcdutil.SourceConfig{Endpoints: []string{f.etcdURL}, Prefix: demoSourcePrefix}
	info.Sink = &etcdutil.SinkConfig{Kind: f.sink}
	if f.sink == etcdutil.SinkEtcd {
		info.Sink.Endpoints, info.Sink.Prefix = []string{f.etcdURL}, demoMirrorPrefix
	}
	info.Tables = []etcdutil.TableInfo{{ID: 1}}
	if err := storeDemo(ctx, cli, keys, info, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "demo replicates %s of %s from revision %d; write keys there (etcdctl put %sk v)", demoSourcePrefix, f.etcdURL, info.StartTs, demoSourcePrefix)
	if f.sink == etcdutil.SinkEtcd {
		fmt.Fprintf(out, " and compare with `tidemark ctl diff demo` or `etcdctl get --prefix %s`\n", demoMirrorPrefix)
	} else {
		fmt.Fprintf(out, "; each node writes <node dir>/cdc/demo-*.jsonl\n")
	}
	return nil
}

// storeDemo stores info, keeping a demo that a reused --dir already holds.
func storeDemo(ctx context.Context, cli *clientv3.Client, keys etcdutil.Keys, info etcdutil.ChangefeedInfo, out io.Writer) error {
	info.Normalize()
	err := etcdutil.CreateChangefeed(ctx, cli, keys, info)
	if errors.Is(err, etcdutil.ErrExists) {
		fmt.Fprintf(out, "changefeed %s already exists in --dir; keeping it\n", demoChangefeed)
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot create changefeed %s: %w", demoChangefeed, err)
	}
	return nil
}

// startChildren starts one server process per node. On error it returns the children started
// so far, for the caller to stop.
func startChildren(f playgroundFlags, dir string, certs playgroundTLS) ([]*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find the tidemark binary to start nodes with: %w", err)
	}
	var children []*child
	for i := range f.nodes {
		c := &child{id: playgroundNodeID(i)}
		c.addr, c.statusAddr = f.nodePorts(i)
		c.dataDir = filepath.Join(dir, c.id)
		c.logPath = filepath.Join(dir, c.id+".log")
		if err := os.MkdirAll(c.dataDir, 0o755); err != nil {
			return children, fmt.Errorf("cannot create the data dir of %s: %w", c.id, err)
		}
		args := []string{"server", "--etcd", f.etcdURL, "--addr", c.addr, "--status-addr", c.statusAddr,
			"--cluster", playgroundCluster, "--data-dir", c.dataDir, "--node-id", c.id, "--log-file", c.logPath}
		args = append(args, certs.serverArgs(c.id)...)
		if err := startChild(self, c, args); err != nil {
			return children, err
		}
		children = append(children, c)
	}
	return children, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/server"
)

// serverFlags are the flags of `tidemark server`.
type serverFlags struct {
	etcd, addr, statusAddr, cluster, dataDir, nodeID string
	sessionTTL                                       time.Duration
	logLevel, logFile                                string
}

func newServerCmd() *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run one tidemark node until SIGINT or SIGTERM",
		Example: "  tidemark server --etcd http://127.0.0.1:2379 --addr 127.0.0.1:8300 \\\n" +
			"    --status-addr 127.0.0.1:8301 --cluster prod --data-dir /var/lib/tidemark",
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error { return runServer(c.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.etcd, "etcd", "", "etcd client URLs, comma-separated (required)")
	fl.StringVar(&f.addr, "addr", "", "gRPC listen address HOST:PORT, also advertised to peers (required)")
	fl.StringVar(&f.statusAddr, "status-addr", "", "HTTP status API listen address HOST:PORT (empty: off)")
	fl.StringVar(&f.cluster, "cluster", "", "cluster ID; every key lives under /tidemark/<cluster>/ (required)")
	fl.StringVar(&f.dataDir, "data-dir", "", "directory for this node's local state (required)")
	fl.StringVar(&f.nodeID, "node-id", "", "node ID (default: kept in <data-dir>/node-id)")
	fl.DurationVar(&f.sessionTTL, "session-ttl", 5*time.Second, "etcd session TTL: how fast a dead node is noticed")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&f.logFile, "log-file", "", "log file (default: stderr)")
	return cmd
}

// buildServerConfig checks the flags and turns them into a validated server.Config.
// Every error it returns is a usage error.
func buildServerConfig(f serverFlags) (server.Config, error) {
	var cfg server.Config
	for _, req := range []struct{ name, val string }{
		{"etcd", f.etcd}, {"addr", f.addr}, {"cluster", f.cluster}, {"data-dir", f.dataDir},
	} {
		if strings.TrimSpace(req.val) == "" {
			return cfg, usagef("--%s is required", req.name)
		}
	}
	eps, err := parseEndpoints("etcd", f.etcd)
	if err != nil {
		return cfg, err
	}
	if _, err := parseHostPort("addr", f.addr); err != nil {
		return cfg, err
	}
	if f.statusAddr != "" {
		if _, err := parseHostPort("status-addr", f.statusAddr); err != nil {
			return cfg, err
		}
	}
	if strings.Contains(f.cluster, "/") {
		return cfg, usagef("--cluster %q contains '/'; a cluster ID is one etcd key segment", f.cluster)
	}
	if f.sessionTTL < time.Second {
		return cfg, usagef("--session-ttl %s is below 1s; etcd leases count in whole seconds", f.sessionTTL)
	}
	cfg = server.Config{
		ClusterID:     f.cluster,
		NodeID:        f.nodeID,
		DataDir:       f.dataDir,
		EtcdEndpoints: eps,
		Addr:          f.addr,
		StatusAddr:    f.statusAddr,
		SessionTTL:    f.sessionTTL,
		Version:       version,
	}
	if err := cfg.Validate(); err != nil {
		return cfg, &usageError{err: err}
	}
	return cfg, nil
}

// runServer runs one node until a signal arrives. It checks etcd first so that the most common
// start-up mistake, etcd not running, gets an answer that says what to do.
func runServer(ctx context.Context, f serverFlags) error {
	cfg, err := buildServerConfig(f)
	if err != nil {
		return err
	}
	lg, err := newLogger(f.logLevel, f.logFile)
	if err != nil {
		return err
	}
	defer func() { _ = lg.Sync() }()
	cfg.Logger = lg

	ctx, stop := signalContext(ctx)
	defer stop()
	if err := checkEtcd(ctx, cfg.EtcdEndpoints); err != nil {
		return err
	}
	srv, err := server.New(cfg)
	if err != nil {
		return fmt.Errorf("cannot start the node: %w", err)
	}
	lg.Info("tidemark server starting", zap.String("version", version), zap.String("addr", cfg.Addr))
	if err := srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("node stopped: %w", err)
	}
	return nil
}

// checkEtcd connects once and hangs up, to turn "etcd is not there" into a clear error.
func checkEtcd(ctx context.Context, eps []string) error {
	cli, err := etcdutil.Connect(ctx, eps, nil, 5*time.Second)
	if err != nil {
		return fmt.Errorf("%w; start etcd there, or run `tidemark playground` for a local cluster", err)
	}
	return cli.Close()
}

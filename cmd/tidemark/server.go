package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
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
	peerTLS, etcdTLS                                 etcdutil.TLSFiles
	drainOnShutdown                                  bool
	drainTimeout                                     time.Duration
	unhealthyAfter                                   time.Duration
	statusRequireClientCert, enablePprof             bool
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
	fl.StringVar(&f.addr, "addr", "", "gRPC listen address HOST:PORT, also advertised to peers; port 0 picks a free one (required)")
	fl.StringVar(&f.statusAddr, "status-addr", "", "HTTP status API listen address HOST:PORT; port 0 picks a free one (empty: off)")
	fl.StringVar(&f.cluster, "cluster", "", "cluster ID; every key lives under /tidemark/<cluster>/ (required)")
	fl.StringVar(&f.dataDir, "data-dir", "", "directory for this node's local state (required)")
	fl.StringVar(&f.nodeID, "node-id", "", "node ID (default: kept in <data-dir>/node-id)")
	fl.DurationVar(&f.sessionTTL, "session-ttl", 5*time.Second, "etcd session TTL: how fast a dead node is noticed")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&f.logFile, "log-file", "", "log file (default: stderr)")
	fl.StringVar(&f.peerTLS.CA, "tls-ca", "", "CA file that signed every node's certificate (mutual TLS between nodes)")
	fl.StringVar(&f.peerTLS.Cert, "tls-cert", "", "this node's certificate file, used as server and client")
	fl.StringVar(&f.peerTLS.Key, "tls-key", "", "this node's key file")
	fl.StringVar(&f.etcdTLS.CA, "etcd-ca", "", "CA file to verify etcd's certificate (turns on TLS to etcd)")
	fl.StringVar(&f.etcdTLS.Cert, "etcd-cert", "", "client certificate file for etcd (mutual TLS)")
	fl.StringVar(&f.etcdTLS.Key, "etcd-key", "", "client key file for etcd (mutual TLS)")
	fl.BoolVar(&f.statusRequireClientCert, "status-require-client-cert", false,
		"with --tls-*: the HTTPS status API refuses clients without a certificate of the cluster CA")
	fl.BoolVar(&f.enablePprof, "enable-pprof", false, "serve Go profiles at /debug/pprof/ on the status API")
	fl.BoolVar(&f.drainOnShutdown, "drain-on-shutdown", false, "on SIGTERM/SIGINT, move this node's spans away before stopping")
	fl.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "how long --drain-on-shutdown waits before stopping anyway")
	fl.DurationVar(&f.unhealthyAfter, "unhealthy-after", 30*time.Second,
		"how long a sink may fail (a full disk) before this node marks itself unhealthy and its spans move away")
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
	if err := parseListenAddr("addr", f.addr); err != nil {
		return cfg, err
	}
	if f.statusAddr != "" {
		if err := parseListenAddr("status-addr", f.statusAddr); err != nil {
			return cfg, err
		}
	}
	if strings.Contains(f.cluster, "/") {
		return cfg, usagef("--cluster %q contains '/'; a cluster ID is one etcd key segment", f.cluster)
	}
	if f.sessionTTL < time.Second {
		return cfg, usagef("--session-ttl %s is below 1s; etcd leases count in whole seconds", f.sessionTTL)
	}
	if f.drainTimeout <= 0 {
		return cfg, usagef("--drain-timeout %s must be above zero", f.drainTimeout)
	}
	if f.unhealthyAfter < 100*time.Millisecond {
		return cfg, usagef("--unhealthy-after %s is below 100ms", f.unhealthyAfter)
	}
	peerTLS, err := etcdutil.MutualTLS(f.peerTLS)
	if err != nil {
		return cfg, usagef("--tls-ca/--tls-cert/--tls-key: %w", err)
	}
	etcdTLS, err := etcdutil.ClientTLS(f.etcdTLS)
	if err != nil {
		return cfg, usagef("--etcd-ca/--etcd-cert/--etcd-key: %w", err)
	}
	if f.statusRequireClientCert && peerTLS == nil {
		return cfg, usagef("--status-require-client-cert needs --tls-ca/--tls-cert/--tls-key: their CA verifies the clients")
	}
	cfg = server.Config{
		ClusterID:      f.cluster,
		NodeID:         f.nodeID,
		DataDir:        f.dataDir,
		EtcdEndpoints:  eps,
		Addr:           f.addr,
		StatusAddr:     f.statusAddr,
		SessionTTL:     f.sessionTTL,
		UnhealthyAfter: f.unhealthyAfter,
		Version:        version,
		PeerTLS:        peerTLS,
		EtcdTLS:        etcdTLS,

		StatusRequireClientCert: f.statusRequireClientCert,
		EnablePprof:             f.enablePprof,
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

	sigCtx, stop := signalContext(ctx)
	defer stop()
	// New opens no connection: a node misconfigured (a certificate of another node) is told so
	// before etcd is even asked.
	srv, err := server.New(cfg)
	if err != nil {
		return fmt.Errorf("cannot start the node: %w", err)
	}
	if err := checkEtcd(sigCtx, cfg.EtcdEndpoints, cfg.EtcdTLS); err != nil {
		return err
	}
	lg.Info("tidemark server starting", zap.String("version", version), zap.String("addr", cfg.Addr))
	// The node runs on its own context so that a drain can run between the signal and the stop.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	select {
	case err = <-done:
	case <-sigCtx.Done():
		if f.drainOnShutdown {
			drainSelf(cfg, srv.NodeID(), f.drainTimeout, lg)
		}
		cancelRun()
		err = <-done
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("node stopped: %w", err)
	}
	return nil
}

// drainSelf moves this node's spans away before it stops, bounded by timeout; whatever is left
// is re-placed by the maintainers once the node's lease is gone, as after any stop.
func drainSelf(cfg server.Config, node string, timeout time.Duration, lg *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	lg.Info("draining before shutdown", zap.Duration("timeout", timeout))
	cli, err := etcdutil.Connect(ctx, cfg.EtcdEndpoints, cfg.EtcdTLS, timeout)
	if err != nil {
		lg.Warn("drain before shutdown skipped: etcd unreachable", zap.Error(err))
		return
	}
	defer func() { _ = cli.Close() }()
	env := &ctlEnv{cli: cli, keys: etcdutil.Keys{Cluster: cfg.ClusterID}, out: io.Discard}
	if err := drainNode(ctx, env, node); err != nil {
		lg.Warn("drain before shutdown incomplete; stopping anyway", zap.Error(err), zap.Duration("took", time.Since(start)))
		return
	}
	lg.Info("drained before shutdown", zap.Duration("took", time.Since(start)))
}

// checkEtcd connects once and hangs up, to turn "etcd is not there" into a clear error.
func checkEtcd(ctx context.Context, eps []string, tlsCfg *tls.Config) error {
	cli, err := etcdutil.Connect(ctx, eps, tlsCfg, 5*time.Second)
	if err != nil {
		return fmt.Errorf("%w; start etcd there, or run `tidemark playground` for a local cluster", err)
	}
	return cli.Close()
}

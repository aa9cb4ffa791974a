// Command counter is a tidemark node with a dispatcher of its own: it embeds a node through
// package node and adds the dispatcher kind "counter", which counts, per span, the milliseconds
// of clock time its changefeed has advanced through, and appends each tally to a file under the
// data dir. See README.md to run a cluster of it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/node"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "counter:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("counter", flag.ContinueOnError)
	etcd := fs.String("etcd", "http://127.0.0.1:2379", "etcd client URLs, comma-separated")
	cluster := fs.String("cluster", "playground", "cluster ID")
	id := fs.String("node-id", "", "node ID (default: kept in the data dir)")
	addr := fs.String("addr", "127.0.0.1:8400", "gRPC listen address, advertised to peers")
	statusAddr := fs.String("status-addr", "", "HTTP status API address (empty: off)")
	dataDir := fs.String("data-dir", "", "data dir: node ID and the counter's output files (required)")
	ttl := fs.Duration("session-ttl", 5*time.Second, "etcd session TTL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		return fmt.Errorf("--data-dir is required")
	}
	log, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := node.Config{
		ClusterID: *cluster, NodeID: *id, DataDir: *dataDir, EtcdEndpoints: strings.Split(*etcd, ","),
		Addr: *addr, StatusAddr: *statusAddr, SessionTTL: *ttl, Logger: log,
	}
	return node.Run(ctx, cfg, map[string]node.Kind{KindName: counterKind})
}

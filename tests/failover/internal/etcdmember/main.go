package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "etcdmember:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("etcdmember", flag.ContinueOnError)
	cfg := embed.NewConfig()
	name := fs.String("name", "default", "member name")
	dir := fs.String("data-dir", "", "data directory")
	listenClient := fs.String("listen-client-urls", "", "client URLs to listen on")
	advClient := fs.String("advertise-client-urls", "", "client URLs to advertise")
	listenPeer := fs.String("listen-peer-urls", "", "peer URLs to listen on")
	advPeer := fs.String("initial-advertise-peer-urls", "", "peer URLs to advertise")
	initial := fs.String("initial-cluster", "", "name=peerURL,...")
	state := fs.String("initial-cluster-state", "new", "new or existing")
	token := fs.String("initial-cluster-token", "etcd-cluster", "cluster token")
	tick := fs.Uint("heartbeat-interval", 100, "raft heartbeat interval (ms)")
	election := fs.Uint("election-timeout", 1000, "raft election timeout (ms)")
	level := fs.String("log-level", "error", "log level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Name, cfg.Dir = *name, *dir
	cfg.InitialCluster, cfg.ClusterState, cfg.InitialClusterToken = *initial, *state, *token
	cfg.TickMs, cfg.ElectionMs = *tick, *election
	cfg.LogLevel = *level
	cfg.EnableGRPCGateway = false
	var err error
	for _, u := range []struct {
		dst *[]url.URL
		raw string
	}{{&cfg.ListenClientUrls, *listenClient}, {&cfg.AdvertiseClientUrls, *advClient},
		{&cfg.ListenPeerUrls, *listenPeer}, {&cfg.AdvertisePeerUrls, *advPeer}} {
		if *u.dst, err = parseURLs(u.raw); err != nil {
			return err
		}
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-e.Err():
		return err
	case <-sig:
		return nil
	}
}

func parseURLs(raw string) ([]url.URL, error) {
	var out []url.URL
	for _, s := range strings.Split(raw, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("bad URL %q", s)
		}
		out = append(out, *u)
	}
	return out, nil
}

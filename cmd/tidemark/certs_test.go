package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/messaging"
	"github.com/tidemark/tidemark/server"
	"github.com/tidemark/tidemark/ts"
)

func TestCertsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	args := []string{"certs", "--dir", dir, "--cluster", "prod", "--nodes", "node-1,node-2", "--valid", "24h"}
	res := runCLI(t, args...)
	if res.code != exitOK {
		t.Fatalf("certs: %d %s", res.code, res.stderr)
	}
	for _, f := range []string{"ca.pem", "ca-key.pem", "node-1.pem", "node-1-key.pem", "node-2.pem", "node-2-key.pem", "ctl.pem", "ctl-key.pem"} {
		if !strings.Contains(res.stdout, "wrote "+filepath.Join(dir, f)) {
			t.Errorf("stdout does not list %s:\n%s", f, res.stdout)
		}
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(res.stdout, "--tls-ca "+filepath.Join(dir, "ca.pem")+" --tls-cert "+filepath.Join(dir, "ctl.pem")) {
		t.Errorf("stdout does not give the ctl flags:\n%s", res.stdout)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "node-1.pem"))
	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"again", args, exitError, "already exist; pass --force"},
		{"no dir", []string{"certs", "--cluster", "prod", "--nodes", "a"}, exitUsage, "--dir is required"},
		{"no cluster", []string{"certs", "--dir", dir, "--nodes", "a"}, exitUsage, "--cluster is required"},
		{"no nodes", []string{"certs", "--dir", dir, "--cluster", "prod"}, exitUsage, "--nodes is required"},
		{"empty node", []string{"certs", "--dir", dir, "--cluster", "prod", "--nodes", "a,,b"}, exitUsage, "empty element"},
		{"bad node", []string{"certs", "--dir", dir, "--cluster", "prod", "--nodes", "a b"}, exitUsage, "invalid node id"},
		{"duplicate node", []string{"certs", "--dir", dir, "--cluster", "prod", "--nodes", "a,a"}, exitUsage, "would both be written"},
		{"bad cluster", []string{"certs", "--dir", dir, "--cluster", "a/b", "--nodes", "a"}, exitUsage, "invalid cluster id"},
		{"zero validity", []string{"certs", "--dir", dir, "--cluster", "prod", "--nodes", "a", "--valid", "0s"}, exitUsage, "--valid"},
		{"no hosts", []string{"certs", "--dir", dir, "--cluster", "prod", "--nodes", "a", "--hosts", ""}, exitUsage, "--hosts is empty"},
		{"argument", []string{"certs", "x"}, exitUsage, "takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, tc.args...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.err) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", res.code, res.stderr, tc.code, tc.err)
			}
		})
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "node-1.pem")); string(after) != string(before) {
		t.Fatal("a refused run changed node-1.pem")
	}
	// A node added later is signed by the same CA; --client '' skips the ctl certificate.
	res = runCLI(t, "certs", "--dir", dir, "--cluster", "prod", "--nodes", "node-3", "--client", "")
	if res.code != exitOK || !strings.Contains(res.stdout, "reused the CA") || strings.Contains(res.stdout, "ctl.pem") {
		t.Fatalf("add node-3: %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = runCLI(t, append(args, "--force")...)
	if res.code != exitOK || strings.Contains(res.stdout, "reused") {
		t.Fatalf("--force: %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// certFiles are the TLS files `tidemark certs` wrote for name.
func certFiles(dir, name string) etcdutil.TLSFiles {
	return etcdutil.TLSFiles{CA: caPath(dir), Cert: certPath(dir, name), Key: keyPath(dir, name)}
}

// startTLSNode runs an in-process node of cluster "tlstest" with the certificate of id.
func startTLSNode(t *testing.T, ep, dir, id string) {
	t.Helper()
	peer, err := etcdutil.MutualTLS(certFiles(dir, id))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{ClusterID: "tlstest", NodeID: id, DataDir: t.TempDir(), EtcdEndpoints: []string{ep},
		Addr: "127.0.0.1:0", StatusAddr: "127.0.0.1:0", SessionTTL: 2 * time.Second, TickInterval: 50 * time.Millisecond,
		HeartbeatInterval: 300 * time.Millisecond, StatusPublishInterval: 200 * time.Millisecond, PeerTLS: peer, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitSpread waits until cf is replicating all want spans and every node in nodes holds some.
func waitSpread(t *testing.T, cli *clientv3.Client, keys etcdutil.Keys, cf string, want int, nodes ...string) etcdutil.ChangefeedStatus {
	t.Helper()
	var st etcdutil.ChangefeedStatus
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		var err error
		if st, err = etcdutil.GetStatus(context.Background(), cli, keys, cf); err != nil {
			continue
		}
		ok := st.Spans["replicating"] == want
		for _, n := range nodes {
			ok = ok && st.NodeSpans[n] > 0
		}
		if ok {
			return st
		}
	}
	t.Fatalf("%s: not %d spans replicating over %v within 30s; last status %+v", cf, want, nodes, st)
	return st
}

// TestCertsClusterOverTLS: certificates from `tidemark certs` run a TLS cluster whose nodes
// talk (spans spread over both), whose status API ctl reaches over HTTPS with the ctl
// certificate; a process holding node-2's certificate can neither pass for node-1 towards
// node-3 nor start as node-1.
func TestCertsClusterOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and two nodes")
	}
	dir := t.TempDir()
	if res := runCLI(t, "certs", "--dir", dir, "--cluster", "tlstest", "--nodes", "node-1,node-2,node-3"); res.code != exitOK {
		t.Fatalf("certs: %s", res.stderr)
	}
	etcd := embedetcd.StartForTest(t)
	ep, cli, keys := etcd.ClientURLs()[0], etcd.Client(t), etcdutil.Keys{Cluster: "tlstest"}
	info := etcdutil.ChangefeedInfo{ID: "demo", StartTs: ts.FromTime(time.Now())}
	for i := 1; i <= 8; i++ {
		info.Tables = append(info.Tables, etcdutil.TableInfo{ID: int64(i)})
	}
	if err := etcdutil.CreateChangefeed(context.Background(), cli, keys, info); err != nil {
		t.Fatal(err)
	}
	startTLSNode(t, ep, dir, "node-1")
	startTLSNode(t, ep, dir, "node-3")
	waitSpread(t, cli, keys, "demo", 8, "node-1", "node-3")

	ctlTLS := strings.Fields(ctlTLSArgs(dir, "ctl"))
	base := []string{"ctl", "--etcd", ep, "--cluster", "tlstest"}
	if res := runCLI(t, append(append(base, ctlTLS...), "spans", "--limit", "0")...); res.code != exitOK || strings.Count(res.stdout, "replicating") != 8 {
		t.Fatalf("ctl spans over HTTPS: %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := runCLI(t, append(base, "spans")...); res.code != exitError || !strings.Contains(res.stderr, "serves HTTPS") {
		t.Fatalf("ctl spans without --tls-ca: %d %s", res.code, res.stderr)
	}

	// node-2's certificate claiming node-1, dialling node-3 as node-1 would.
	nodes, err := etcdutil.ListNodes(context.Background(), cli, keys)
	if err != nil {
		t.Fatal(err)
	}
	var addr3 string
	for _, n := range nodes {
		if n.ID == "node-3" {
			addr3 = n.Addr
		}
	}
	stolen, err := etcdutil.MutualTLS(certFiles(dir, "node-2"))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	impostor, err := messaging.NewGRPC(messaging.GRPCConfig{NodeID: "node-1", ClusterID: "tlstest", ListenAddr: "127.0.0.1:0",
		TLS: stolen, Logger: zap.New(core), BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond},
		func(*heartbeatpb.Envelope) {})
	if err != nil {
		t.Fatal(err)
	}
	defer impostor.Close()
	impostor.SetPeers(map[string]string{"node-3": addr3})
	refused := func() bool {
		for _, e := range logs.FilterMessage("messaging: stream to peer down, redialing").All() {
			if msg, _ := e.ContextMap()["error"].(string); strings.Contains(msg, "PermissionDenied") &&
				strings.Contains(msg, "certificate names node") {
				return true
			}
		}
		return false
	}
	for end := time.Now().Add(10 * time.Second); !refused(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("node-3 did not refuse node-2's certificate claiming node-1; impostor stats %+v", impostor.Stats())
		}
	}
	if st := impostor.Stats(); len(st.Peers) != 1 || st.Peers[0].Connected {
		t.Fatalf("the impostor got a stream: %+v", st)
	}
	waitSpread(t, cli, keys, "demo", 8, "node-1", "node-3")

	// Nor does the real binary start as node-1 with node-2's certificate.
	f := certFiles(dir, "node-2")
	res := runBin(t, "server", "--etcd", ep, "--addr", "127.0.0.1:1", "--cluster", "tlstest", "--data-dir", t.TempDir(),
		"--node-id", "node-1", "--tls-ca", f.CA, "--tls-cert", f.Cert, "--tls-key", f.Key)
	if res.code != exitError || !strings.Contains(res.stderr, `this node is "node-1" (--node-id) but its --tls-cert names node "node-2"`) {
		t.Fatalf("server as node-1 with node-2's certificate: exit %d\n%s", res.code, res.stderr)
	}
}

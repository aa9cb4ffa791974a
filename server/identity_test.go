package server

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/pki"
)

// offlineConfig is a valid Config for New, which opens no connection.
func offlineConfig(t *testing.T, nodeID string, peer *tls.Config) Config {
	return Config{ClusterID: "itest", NodeID: nodeID, DataDir: t.TempDir(), EtcdEndpoints: []string{"http://127.0.0.1:1"},
		Addr: "127.0.0.1:0", PeerTLS: peer}
}

func mutualTLS(t *testing.T, f etcdutil.TLSFiles) *tls.Config {
	t.Helper()
	c, err := etcdutil.MutualTLS(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOwnCertificateMustNameNode: with peer TLS a node starts only as the node its certificate
// names (peers would refuse it as anything else), and takes that ID when it has none yet.
func TestOwnCertificateMustNameNode(t *testing.T) {
	ca := newTestPKI(t, "tidemark")
	n1 := mutualTLS(t, ca.issueNode(t, "itest", "n1"))

	if s, err := New(offlineConfig(t, "n1", n1)); err != nil || s.NodeID() != "n1" {
		t.Fatalf("matching --node-id: %v", err)
	}
	cfg := offlineConfig(t, "", n1)
	if s, err := New(cfg); err != nil || s.NodeID() != "n1" {
		t.Fatalf("no node id yet: got %v, want the certificate's n1", err)
	}
	if b, _ := os.ReadFile(filepath.Join(cfg.DataDir, "node-id")); strings.TrimSpace(string(b)) != "n1" {
		t.Fatalf("node-id file holds %q, want n1", b)
	}

	cfg = offlineConfig(t, "n2", n1)
	_, err := New(cfg)
	if err == nil || !strings.Contains(err.Error(), `this node is "n2" (--node-id) but its --tls-cert names node "n1"`) {
		t.Fatalf("--node-id n2 with n1's certificate: %v", err)
	}
	if _, statErr := os.Stat(filepath.Join(cfg.DataDir, "node-id")); statErr == nil {
		t.Fatal("a refused --node-id was stored")
	}

	cfg = offlineConfig(t, "", n1)
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "node-id"), []byte("n2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), `this node is "n2" (from `) {
		t.Fatalf("stored node id n2 with n1's certificate: %v", err)
	}

	for name, files := range map[string]etcdutil.TLSFiles{
		"another cluster's certificate": ca.issueNode(t, "other", "n1"),
		"a certificate naming no node":  ca.issue(t, "n1"),
	} {
		if _, err := New(offlineConfig(t, "n1", mutualTLS(t, files))); !errors.Is(err, pki.ErrNoIdentity) {
			t.Errorf("%s: %v, want pki.ErrNoIdentity", name, err)
		}
	}
}

// TestPlaintextWarnsAtStart: without peer TLS the node says, once, that peers are not
// authenticated; with TLS it does not.
func TestPlaintextWarnsAtStart(t *testing.T) {
	count := func(peer *tls.Config) int {
		core, logs := observer.New(zap.WarnLevel)
		cfg := offlineConfig(t, "n1", peer)
		cfg.Logger = zap.New(core)
		if _, err := New(cfg); err != nil {
			t.Fatal(err)
		}
		return logs.FilterMessage(unauthenticatedWarning).Len()
	}
	if n := count(nil); n != 1 {
		t.Fatalf("plaintext: %d warnings, want 1", n)
	}
	ca := newTestPKI(t, "tidemark")
	if n := count(mutualTLS(t, ca.issueNode(t, "itest", "n1"))); n != 0 {
		t.Fatalf("tls: %d warnings, want 0", n)
	}
	if !strings.Contains(unauthenticatedWarning, "--tls-ca/--tls-cert/--tls-key") {
		t.Fatal("the warning does not say how to fix it")
	}
}

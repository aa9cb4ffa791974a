package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestNodeID(t *testing.T) {
	for _, tc := range []struct {
		name    string
		uris    []string
		want    string
		noIdent bool   // errors.Is(err, ErrNoIdentity)
		errHas  string // other error
	}{
		{name: "node", uris: []string{"tidemark://prod/node/n1"}, want: "n1"},
		{name: "node beside other URIs", uris: []string{"spiffe://x/y", "tidemark://prod/node/n1"}, want: "n1"},
		{name: "same node twice", uris: []string{"tidemark://prod/node/n1", "tidemark://prod/node/n1"}, want: "n1"},
		{name: "none", noIdent: true},
		{name: "client only", uris: []string{"tidemark://prod/client/ctl"}, noIdent: true},
		{name: "other cluster", uris: []string{"tidemark://staging/node/n1"}, noIdent: true},
		{name: "two nodes", uris: []string{"tidemark://prod/node/n1", "tidemark://prod/node/n2"}, errHas: "names two nodes"},
		{name: "bad kind", uris: []string{"tidemark://prod/admin/n1"}, errHas: "kind"},
		{name: "bad id", uris: []string{"tidemark://prod/node/-x"}, errHas: "invalid node id"},
		{name: "no kind", uris: []string{"tidemark://prod/n1"}, errHas: "malformed"},
		{name: "port", uris: []string{"tidemark://prod:1/node/n1"}, errHas: "malformed"},
		{name: "extra segment", uris: []string{"tidemark://prod/node/n1/x"}, errHas: "invalid node id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := &x509.Certificate{}
			for _, u := range tc.uris {
				cert.URIs = append(cert.URIs, mustURL(t, u))
			}
			got, err := NodeID(cert, "prod")
			switch {
			case tc.want != "":
				if err != nil || got != tc.want {
					t.Fatalf("NodeID = %q, %v; want %q", got, err, tc.want)
				}
			case tc.noIdent:
				if !errors.Is(err, ErrNoIdentity) {
					t.Fatalf("NodeID = %q, %v; want ErrNoIdentity", got, err)
				}
			default:
				if err == nil || errors.Is(err, ErrNoIdentity) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("NodeID = %q, %v; want an error containing %q", got, err, tc.errHas)
				}
			}
		})
	}
	if _, err := NodeID(nil, "prod"); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("nil certificate: %v", err)
	}
}

func TestIssueNodeVerifies(t *testing.T) {
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.IssueNode("prod", "n1", []string{"127.0.0.1", "localhost"}, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert := parseCert(t, p.CertPEM)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, use := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{use}, DNSName: "localhost"}); err != nil {
			t.Fatalf("verify for %v: %v", use, err)
		}
	}
	if err := cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if id, err := NodeID(cert, "prod"); err != nil || id != "n1" {
		t.Fatalf("NodeID = %q, %v", id, err)
	}
	if cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Fatalf("leaf outlives its CA: %v > %v", cert.NotAfter, ca.Cert.NotAfter)
	}
	c, err := ca.IssueClient("prod", "ctl", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	client := parseCert(t, c.CertPEM)
	if _, err := client.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Fatal("a client certificate verifies for server use")
	}
	if _, err := NodeID(client, "prod"); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("a client certificate names a node: %v", err)
	}
	if _, err := ca.IssueNode("prod", "n/1", []string{"h"}, time.Hour); err == nil {
		t.Fatal("node id with '/' accepted")
	}
	if _, err := ca.IssueNode("prod", "n1", nil, time.Hour); err == nil {
		t.Fatal("node certificate without host accepted")
	}
}

func TestWriteCluster(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	spec := ClusterSpec{Dir: dir, Cluster: "prod", Nodes: []string{"n1", "n2"}, Clients: []string{"ctl"},
		Hosts: []string{"127.0.0.1"}, Valid: time.Hour}
	w, err := WriteCluster(spec)
	if err != nil {
		t.Fatal(err)
	}
	if w.ReusedCA || len(w.Files) != 8 {
		t.Fatalf("written %+v", w)
	}
	for _, f := range []string{KeyFile(dir, "n1"), KeyFile(dir, "ctl"), filepath.Join(dir, CAKeyFile)} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v; want mode 0600", f, st.Mode(), err)
		}
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, CAFile))

	// A second run refuses and changes nothing.
	before, _ := os.ReadFile(CertFile(dir, "n1"))
	if _, err := WriteCluster(spec); err == nil || !strings.Contains(err.Error(), "already exist") {
		t.Fatalf("second run: %v", err)
	}
	if after, _ := os.ReadFile(CertFile(dir, "n1")); string(after) != string(before) {
		t.Fatal("a refused run changed n1.pem")
	}

	// Adding a node reuses the CA.
	add := spec
	add.Nodes, add.Clients = []string{"n3"}, nil
	w, err = WriteCluster(add)
	if err != nil || !w.ReusedCA || len(w.Files) != 2 {
		t.Fatalf("add node: %+v, %v", w, err)
	}
	ca := parseCert(t, caPEM)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	n3PEM, _ := os.ReadFile(CertFile(dir, "n3"))
	if _, err := parseCert(t, n3PEM).Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Fatalf("n3 not signed by the existing CA: %v", err)
	}

	// --force makes a new CA.
	force := spec
	force.Force = true
	if w, err = WriteCluster(force); err != nil || w.ReusedCA {
		t.Fatalf("force: %+v, %v", w, err)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, CAFile)); string(now) == string(caPEM) {
		t.Fatal("--force kept the old CA")
	}

	// Half a CA is an error, not a silent new CA.
	if err := os.Remove(filepath.Join(dir, CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	add.Nodes = []string{"n4"}
	if _, err := WriteCluster(add); err == nil || !strings.Contains(err.Error(), "does not") {
		t.Fatalf("half a CA: %v", err)
	}
}

func TestWriteClusterRejectsBadSpecs(t *testing.T) {
	ok := ClusterSpec{Dir: t.TempDir(), Cluster: "prod", Nodes: []string{"n1"}, Hosts: []string{"127.0.0.1"}, Valid: time.Hour}
	for _, tc := range []struct {
		name   string
		edit   func(*ClusterSpec)
		errHas string
	}{
		{"no dir", func(s *ClusterSpec) { s.Dir = "" }, "directory"},
		{"no nodes", func(s *ClusterSpec) { s.Nodes = nil }, "no node"},
		{"no hosts", func(s *ClusterSpec) { s.Hosts = nil }, "no hosts"},
		{"empty host", func(s *ClusterSpec) { s.Hosts = []string{""} }, "empty host"},
		{"zero validity", func(s *ClusterSpec) { s.Valid = 0 }, "validity"},
		{"bad cluster", func(s *ClusterSpec) { s.Cluster = "a/b" }, "cluster"},
		{"bad node", func(s *ClusterSpec) { s.Nodes = []string{"x y"} }, "node id"},
		{"duplicate", func(s *ClusterSpec) { s.Nodes = []string{"n1", "n1"} }, "both"},
		{"node named ca", func(s *ClusterSpec) { s.Nodes = []string{"ca"} }, "both"},
		{"key clash", func(s *ClusterSpec) { s.Nodes = []string{"a", "a-key"} }, "both"},
		{"client clash", func(s *ClusterSpec) { s.Clients = []string{"n1"} }, "both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.edit(&s)
			if _, err := WriteCluster(s); err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v, want one containing %q", err, tc.errHas)
			}
			if entries, _ := os.ReadDir(ok.Dir); len(entries) != 0 {
				t.Fatalf("a refused spec wrote %d files", len(entries))
			}
		})
	}
}

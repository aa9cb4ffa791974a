package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zaptest"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/pki"
)

// testPKI is a CA that issues certificates for 127.0.0.1, written as PEM files.
type testPKI struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	serial int64
}

func newTestPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &testPKI{dir: t.TempDir(), caCert: cert, caKey: key, serial: 1}
	p.caFile = p.write(t, name+"-ca.pem", "CERTIFICATE", der)
	return p
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue returns the files of a certificate for 127.0.0.1 usable as server and client.
func (p *testPKI) issue(t *testing.T, name string) etcdutil.TLSFiles {
	t.Helper()
	return p.issueWith(t, name, nil)
}

// issueNode is issue for node id of cluster: the certificate also names the node (pki).
func (p *testPKI) issueNode(t *testing.T, cluster, id string) etcdutil.TLSFiles {
	t.Helper()
	return p.issueWith(t, cluster+"-"+id, []*url.URL{pki.IdentityURI(cluster, pki.KindNode, id)})
}

func (p *testPKI) issueWith(t *testing.T, name string, uris []*url.URL) etcdutil.TLSFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, URIs: uris, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return etcdutil.TLSFiles{CA: p.caFile, Cert: p.write(t, name+".pem", "CERTIFICATE", der),
		Key: p.write(t, name+"-key.pem", "EC PRIVATE KEY", kder)}
}

// startTLSEtcd starts an etcd member that serves clients over mutual TLS only.
func startTLSEtcd(t *testing.T, server etcdutil.TLSFiles) string {
	t.Helper()
	free := func() url.URL {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return url.URL{Scheme: "http", Host: l.Addr().String()}
	}
	client, peer := free(), free()
	client.Scheme = "https"
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	cfg.LogLevel = "error"
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = server.Cert, server.Key
	cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = server.CA, true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(20 * time.Second):
		t.Fatal("tls etcd not ready")
	}
	return client.String()
}

// TestMutualTLS runs two nodes whose gRPC streams and etcd connections use mutual TLS with
// certificates made here, and checks that spans get placed on both (so the nodes talk) and that
// etcd turns away a client without a certificate or with one from another CA. (That peers turn
// such a node away is messaging's TestGRPCTLSRejectsUntrustedPeer.)
func TestMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and two nodes")
	}
	ca := newTestPKI(t, "tidemark")
	ep := startTLSEtcd(t, ca.issue(t, "etcd"))
	keys := etcdutil.Keys{Cluster: "itest"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	clientTLS, err := etcdutil.ClientTLS(ca.issue(t, "client"))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := etcdutil.Connect(ctx, []string{ep}, clientTLS, 5*time.Second)
	if err != nil {
		t.Fatalf("connect over tls: %v", err)
	}
	defer cli.Close()
	info := etcdutil.ChangefeedInfo{ID: "cf1", StartTs: tsNow()}
	for i := 1; i <= 8; i++ {
		info.Tables = append(info.Tables, etcdutil.TableInfo{ID: int64(i)})
	}
	if err := etcdutil.CreateChangefeed(ctx, cli, keys, info); err != nil {
		t.Fatal(err)
	}

	// Without a client certificate, or with one from another CA, etcd refuses.
	plain, _ := etcdutil.ClientTLS(etcdutil.TLSFiles{CA: ca.caFile})
	if c, err := etcdutil.Connect(ctx, []string{ep}, plain, time.Second); err == nil {
		c.Close()
		t.Fatal("etcd accepted a client without certificate")
	}
	rogue := newTestPKI(t, "rogue").issue(t, "rogue")
	rogue.CA = ca.caFile
	rogueTLS, err := etcdutil.ClientTLS(rogue)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := etcdutil.Connect(ctx, []string{ep}, rogueTLS, time.Second); err == nil {
		c.Close()
		t.Fatal("etcd accepted a certificate from another CA")
	}

	for _, id := range []string{"n1", "n2"} {
		peer, err := etcdutil.MutualTLS(ca.issueNode(t, "itest", id))
		if err != nil {
			t.Fatal(err)
		}
		etcdTLS, err := etcdutil.ClientTLS(ca.issue(t, id+"-etcd"))
		if err != nil {
			t.Fatal(err)
		}
		srv, err := New(Config{ClusterID: "itest", NodeID: id, DataDir: t.TempDir(), EtcdEndpoints: []string{ep},
			Addr: "127.0.0.1:0", SessionTTL: 2 * time.Second, TickInterval: 50 * time.Millisecond,
			HeartbeatInterval: 300 * time.Millisecond, StatusPublishInterval: 200 * time.Millisecond,
			PeerTLS: peer, EtcdTLS: etcdTLS, Logger: zaptest.NewLogger(t).Named(id)})
		if err != nil {
			t.Fatal(err)
		}
		nctx, ncancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Run(nctx) }()
		t.Cleanup(func() { ncancel(); <-done })
	}
	st := waitReplicating(t, cli, keys, "cf1", 8, 30*time.Second, func(st etcdutil.ChangefeedStatus) bool {
		return len(st.NodeSpans) == 2 && st.NodeSpans["n1"] > 0 && st.NodeSpans["n2"] > 0
	})
	t.Logf("over mutual TLS: maintainer %s, spans per node %v", st.Maintainer, st.NodeSpans)

	if _, err := etcdutil.MutualTLS(etcdutil.TLSFiles{Cert: "x"}); err == nil || !strings.Contains(err.Error(), "needs a CA") {
		t.Errorf("MutualTLS without CA: %v", err)
	}
}

package messaging

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// testCA is a self-signed certificate authority made up for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// nodeTLS issues a certificate for 127.0.0.1 usable as server and client, and the mutual-TLS
// config around it.
func (ca *testCA) nodeTLS(t *testing.T, name string, serial int64) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      ca.pool, ClientCAs: ca.pool, ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS13,
	}
}

func TestGRPCMutualTLSRoundTrip(t *testing.T) {
	ca := newTestCA(t, "tidemark test CA")
	a := startNode(t, "a", "127.0.0.1:0", func(c *GRPCConfig) { c.TLS = ca.nodeTLS(t, "a", 2) })
	b := startNode(t, "b", "127.0.0.1:0", func(c *GRPCConfig) { c.TLS = ca.nodeTLS(t, "b", 3) })
	peers := peerMap(a, b)
	a.tr.SetPeers(peers)
	b.tr.SetPeers(peers)
	for seq := uint64(1); seq <= 3; seq++ {
		a.tr.Send(testEnv("a", "b", seq))
		b.tr.Send(testEnv("b", "a", seq))
	}
	checkOrdered(t, b.c.waitCount(t, 3), map[string]int{"a": 3})
	checkOrdered(t, a.c.waitCount(t, 3), map[string]int{"b": 3})
}

func TestGRPCTLSRejectsUntrustedPeer(t *testing.T) {
	ca, other := newTestCA(t, "tidemark test CA"), newTestCA(t, "someone else")
	core, logs := observer.New(zap.InfoLevel)
	a := startNode(t, "a", "127.0.0.1:0", func(c *GRPCConfig) {
		c.TLS = other.nodeTLS(t, "a", 2)
		c.Logger = zap.New(core)
	})
	b := startNode(t, "b", "127.0.0.1:0", func(c *GRPCConfig) { c.TLS = ca.nodeTLS(t, "b", 3) })
	a.tr.SetPeers(peerMap(b))
	a.tr.Send(testEnv("a", "b", 1))
	waitUntil(t, "a failed TLS dial", func() bool {
		for _, e := range logs.FilterMessage("messaging: stream to peer down, redialing").All() {
			if err, _ := e.ContextMap()["error"].(string); strings.Contains(err, "certificate") {
				return true
			}
		}
		return false
	})
	if st := b.tr.Stats(); len(st.Peers) != 0 || st.Received != 0 {
		t.Fatalf("b accepted an untrusted peer: %+v", st)
	}
}

package messaging

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tidemark/tidemark/pki"
)

// testCA is a certificate authority made up for one test, issuing through pki as
// `tidemark certs` does.
type testCA struct {
	ca   *pki.CA
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	ca, err := pki.NewCA(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &testCA{ca: ca, pool: pool}
}

// mutualTLS wraps an issued pair into the mutual-TLS config a node uses (as etcdutil.MutualTLS).
func (ca *testCA) mutualTLS(t *testing.T, p pki.Pair) *tls.Config {
	t.Helper()
	cert, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      ca.pool, ClientCAs: ca.pool, ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS13,
	}
}

// nodeTLS is the config of node id of cluster, its certificate naming that node and 127.0.0.1.
func (ca *testCA) nodeTLS(t *testing.T, cluster, id string) *tls.Config {
	t.Helper()
	p, err := ca.ca.IssueNode(cluster, id, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca.mutualTLS(t, p)
}

// clientTLS is the config of a client-only certificate (what ctl holds).
func (ca *testCA) clientTLS(t *testing.T, cluster, name string) *tls.Config {
	t.Helper()
	p, err := ca.ca.IssueClient(cluster, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca.mutualTLS(t, p)
}

func TestGRPCMutualTLSRoundTrip(t *testing.T) {
	ca := newTestCA(t, "tidemark test CA")
	a := startNode(t, "a", "127.0.0.1:0", func(c *GRPCConfig) { c.TLS = ca.nodeTLS(t, testCluster, "a") })
	b := startNode(t, "b", "127.0.0.1:0", func(c *GRPCConfig) { c.TLS = ca.nodeTLS(t, testCluster, "b") })
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
		c.TLS = other.nodeTLS(t, testCluster, "a")
		c.Logger = zap.New(core)
	})
	b := startNode(t, "b", "127.0.0.1:0", func(c *GRPCConfig) { c.TLS = ca.nodeTLS(t, testCluster, "b") })
	a.tr.SetPeers(peerMap(b))
	a.tr.Send(testEnv("a", "b", 1))
	waitUntil(t, "a failed TLS dial", func() bool { return redialErrorContains(logs, "certificate") })
	if st := b.tr.Stats(); len(st.Peers) != 0 || st.Received != 0 {
		t.Fatalf("b accepted an untrusted peer: %+v", st)
	}
}

// redialErrorContains reports whether a "redialing" log line's error contains every one of subs.
func redialErrorContains(logs *observer.ObservedLogs, subs ...string) bool {
next:
	for _, e := range logs.FilterMessage("messaging: stream to peer down, redialing").All() {
		err, _ := e.ContextMap()["error"].(string)
		for _, s := range subs {
			if !strings.Contains(err, s) {
				continue next
			}
		}
		return true
	}
	return false
}

// TestGRPCTLSDialerChecksServerIdentity: a process at n3's address that holds n2's certificate
// (trusted CA, right host) is not taken for n3: the dialer's handshake fails.
func TestGRPCTLSDialerChecksServerIdentity(t *testing.T) {
	ca := newTestCA(t, "tidemark test CA")
	core, logs := observer.New(zap.InfoLevel)
	n1 := startNode(t, "n1", "127.0.0.1:0", func(c *GRPCConfig) {
		c.TLS = ca.nodeTLS(t, testCluster, "n1")
		c.Logger = zap.New(core)
	})
	impostor := startNode(t, "n3", "127.0.0.1:0", func(c *GRPCConfig) { c.TLS = ca.nodeTLS(t, testCluster, "n2") })
	n1.tr.SetPeers(map[string]string{"n3": impostor.tr.Addr()})
	n1.tr.Send(testEnv("n1", "n3", 1))
	waitUntil(t, "n1 refused the impostor", func() bool {
		// gRPC quotes the handshake error, so match words, not the quoted IDs.
		return redialErrorContains(logs, "dialled node", "n3", "but the server's certificate names node", "n2")
	})
	if st := impostor.tr.Stats(); st.Received != 0 {
		t.Fatalf("the impostor received %d envelopes", st.Received)
	}
}

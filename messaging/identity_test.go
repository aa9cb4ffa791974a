package messaging

import (
	"context"
	"crypto/tls"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// rawTLSStream dials addr with cfg like a node would, claiming to be from, and returns the
// stream once the acceptor answered, or the status it was refused with. It stands in for a
// process that holds some certificate of the cluster CA and speaks the protocol by hand.
func rawTLSStream(t *testing.T, addr string, cfg *tls.Config, from, to string) (grpc.BidiStreamingClient[heartbeatpb.Batch, heartbeatpb.Batch], error) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(gogoCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(func() { cancel(); cc.Close() })
	md := metadata.Pairs(mdCluster, testCluster, mdFrom, from, mdTo, to)
	cs, err := heartbeatpb.NewMessengerClient(cc).Stream(metadata.NewOutgoingContext(ctx, md))
	if err != nil {
		return nil, err
	}
	if hdr, _ := cs.Header(); first(hdr, mdNode) == to {
		return cs, nil
	}
	return nil, cs.RecvMsg(&recvFrame{})
}

// TestGRPCTLSCertificateCannotClaimAnotherNode: with TLS, n1 talks to n3 on one stream. Then
// certificates that are not n1's (n2's, a client's, n1's of another cluster) try to open a
// stream to n3 claiming to be n1. Each is refused with PermissionDenied before any stream
// exists, n1's stream to n3 is not replaced, and n3 logs who claimed what from where.
func TestGRPCTLSCertificateCannotClaimAnotherNode(t *testing.T) {
	ca := newTestCA(t, "tidemark test CA")
	core, logs := observer.New(zap.InfoLevel)
	n1 := startNode(t, "n1", "127.0.0.1:0", func(c *GRPCConfig) { c.TLS = ca.nodeTLS(t, testCluster, "n1") })
	n3 := startNode(t, "n3", "127.0.0.1:0", func(c *GRPCConfig) {
		c.TLS = ca.nodeTLS(t, testCluster, "n3")
		c.Logger = zap.New(core)
	})
	n1.tr.SetPeers(peerMap(n3))
	n3.tr.SetPeers(peerMap(n1))
	n1.tr.Send(testEnv("n1", "n3", 1))
	n3.c.waitCount(t, 1)
	accepted := func() int {
		return logs.FilterMessage("messaging: stream accepted").FilterField(zap.String("peer", "n1")).Len()
	}
	if accepted() != 1 {
		t.Fatalf("n3 accepted %d streams from n1, want 1", accepted())
	}

	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		cert string // what n3's log names as the certificate's node
	}{
		{"node n2's certificate", ca.nodeTLS(t, testCluster, "n2"), "n2"},
		{"a client certificate", ca.clientTLS(t, testCluster, "ctl"), ""},
		{"n1's certificate of another cluster", ca.nodeTLS(t, "other-cluster", "n1"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refusedBefore := logs.FilterMessage("messaging: inbound stream refused: claimed node does not match its certificate").Len()
			cs, err := rawTLSStream(t, n3.tr.Addr(), tc.cfg, "n1", "n3")
			if cs != nil {
				t.Fatal("a stream claiming n1 was accepted with a certificate that is not n1's")
			}
			if status.Code(err) != codes.PermissionDenied {
				t.Fatalf("refusal %v, want PermissionDenied", err)
			}
			refused := logs.FilterMessage("messaging: inbound stream refused: claimed node does not match its certificate").All()
			if len(refused) != refusedBefore+1 {
				t.Fatalf("%d refusal log lines, want %d", len(refused), refusedBefore+1)
			}
			f := refused[len(refused)-1].ContextMap()
			if f["claimed"] != "n1" || f["certificate_node"] != tc.cert || f["remote_addr"] == "" {
				t.Fatalf("refusal logged %v", f)
			}
		})
	}
	// n1's stream is still the one it was, and still carries n1's envelopes.
	n1.tr.Send(testEnv("n1", "n3", 2))
	checkOrdered(t, n3.c.waitCount(t, 2), map[string]int{"n1": 2})
	if accepted() != 1 {
		t.Fatalf("n1's stream was replaced: n3 accepted %d streams from n1", accepted())
	}
}

// TestGRPCTLSStreamCannotSwitchIdentity: a stream authenticated as n2 that sends envelopes
// naming n1 as sender has them dropped; its own envelopes get through (so the stream works).
func TestGRPCTLSStreamCannotSwitchIdentity(t *testing.T) {
	ca := newTestCA(t, "tidemark test CA")
	n3 := startNode(t, "n3", "127.0.0.1:0", func(c *GRPCConfig) { c.TLS = ca.nodeTLS(t, testCluster, "n3") })
	cs, err := rawTLSStream(t, n3.tr.Addr(), ca.nodeTLS(t, testCluster, "n2"), "n2", "n3")
	if err != nil {
		t.Fatalf("n2 claiming n2: %v", err)
	}
	batch := &heartbeatpb.Batch{Envelopes: []*heartbeatpb.Envelope{
		testEnv("n1", "n3", 1), testEnv("n2", "n3", 1), testEnv("n1", "n3", 2),
	}}
	if err := cs.SendMsg(batch); err != nil {
		t.Fatal(err)
	}
	got := n3.c.waitCount(t, 1)
	waitUntil(t, "forged envelopes counted", func() bool { return n3.tr.Stats().Dropped.Invalid == 2 })
	if got = n3.c.got(); len(got) != 1 || got[0].From != "n2" {
		t.Fatalf("delivered %v, want only n2's envelope", got)
	}
}

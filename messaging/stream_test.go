package messaging

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// rawBytes goes through gogoCodec.Marshal as is, so a test can put any bytes on the wire.
type rawBytes []byte

func (r rawBytes) Marshal() ([]byte, error) { return r, nil }

// rawStream opens a Messenger stream to target by hand, with the given metadata pairs.
func rawStream(t *testing.T, target *node, kv ...string) (grpc.ClientStream, context.CancelFunc) {
	t.Helper()
	cc, err := grpc.NewClient(target.tr.Addr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(gogoCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), metadata.Pairs(kv...)), waitTimeout)
	t.Cleanup(cancel)
	cs, err := cc.NewStream(ctx, &heartbeatpb.Messenger_ServiceDesc.Streams[0], heartbeatpb.Messenger_Stream_FullMethodName)
	if err != nil {
		t.Fatal(err)
	}
	return cs, cancel
}

func TestGRPCAcceptorRejectsBadHandshakes(t *testing.T) {
	b := startNode(t, "b", "127.0.0.1:0", nil)
	for _, tc := range []struct {
		name string
		md   []string
		code codes.Code
		msg  string
	}{
		{"wrong cluster", []string{mdCluster, "other", mdFrom, "a", mdTo, "b"}, codes.PermissionDenied, `is for cluster "other"`},
		{"no cluster", []string{mdFrom, "a", mdTo, "b"}, codes.PermissionDenied, `is for cluster ""`},
		{"no node ID", []string{mdCluster, testCluster, mdTo, "b"}, codes.InvalidArgument, "without a node ID"},
		{"wrong target", []string{mdCluster, testCluster, mdFrom, "a", mdTo, "x"}, codes.FailedPrecondition, `for node "x" reached node "b"`},
		{"larger ID dials", []string{mdCluster, testCluster, mdFrom, "c", mdTo, "b"}, codes.FailedPrecondition, "the smaller ID dials"},
		{"self", []string{mdCluster, testCluster, mdFrom, "b", mdTo, "b"}, codes.InvalidArgument, "to itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, _ := rawStream(t, b, tc.md...)
			err := cs.RecvMsg(&recvFrame{})
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), "messaging: ") || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.code, tc.msg)
			}
		})
	}
	if st := b.tr.Stats(); len(st.Peers) != 0 || st.Received != 0 {
		t.Fatalf("a rejected stream left state behind: %+v", st)
	}
}

func TestGRPCDialerRejectedByWrongCluster(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	a := startNode(t, "a", "127.0.0.1:0", func(c *GRPCConfig) { c.Logger = zap.New(core) })
	b := startNode(t, "b", "127.0.0.1:0", func(c *GRPCConfig) { c.ClusterID = "other" })
	a.tr.SetPeers(peerMap(b))
	a.tr.Send(testEnv("a", "b", 1))
	// a sees a clear reason, keeps redialing and keeps its envelope queued.
	waitUntil(t, "two rejected dials", func() bool {
		n := 0
		for _, e := range logs.FilterMessage("messaging: stream to peer down, redialing").All() {
			if err, _ := e.ContextMap()["error"].(string); strings.Contains(err, "PermissionDenied") &&
				strings.Contains(err, `this is cluster "other"`) {
				n++
			}
		}
		return n >= 2
	})
	if st := b.tr.Stats(); len(st.Peers) != 0 || st.Received != 0 {
		t.Fatalf("b accepted a foreign cluster: %+v", st)
	}
	if st := a.tr.Stats(); st.Peers[0].Connected || st.Peers[0].Queued != 1 || st.Sent != 0 {
		t.Fatalf("a: %+v", st)
	}
}

func TestGRPCBadBatchesAreCountedNotFatal(t *testing.T) {
	b := startNode(t, "b", "127.0.0.1:0", nil)
	cs, _ := rawStream(t, b, mdCluster, testCluster, mdFrom, "a", mdTo, "b")
	hdr, err := cs.Header()
	if err != nil || first(hdr, mdNode) != "b" {
		t.Fatalf("handshake: %v %v", hdr, err)
	}
	foreign := testEnv("a", "b", 1)
	foreign.ClusterId = "other"
	spoofed := testEnv("z", "b", 2)
	misrouted := testEnv("a", "c", 3)
	for _, m := range []any{
		rawBytes{0x0a, 0xff, 0xff}, // truncated: the whole batch is dropped
		&heartbeatpb.Batch{Envelopes: []*heartbeatpb.Envelope{foreign, spoofed, misrouted, testEnv("a", "b", 4)}},
	} {
		if err := cs.SendMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	got := b.c.waitCount(t, 1) // the stream survived the bad batch
	if len(got) != 1 || got[0].Seq != 4 {
		t.Fatalf("got %v", got)
	}
	st := b.tr.Stats()
	if st.Dropped.Decode != 1 || st.Dropped.WrongCluster != 1 || st.Dropped.Invalid != 2 || st.Received != 1 {
		t.Fatalf("stats: %+v", st.Dropped)
	}
}

func TestGRPCNewerStreamReplacesOlder(t *testing.T) {
	b := startNode(t, "b", "127.0.0.1:0", nil)
	old, _ := rawStream(t, b, mdCluster, testCluster, mdFrom, "a", mdTo, "b")
	if hdr, _ := old.Header(); hdr == nil {
		t.Fatal("first stream not accepted")
	}
	newer, _ := rawStream(t, b, mdCluster, testCluster, mdFrom, "a", mdTo, "b")
	if hdr, _ := newer.Header(); hdr == nil {
		t.Fatal("second stream not accepted")
	}
	if err := old.RecvMsg(&recvFrame{}); status.Code(err) != codes.Aborted {
		t.Fatalf("old stream: got %v, want Aborted", err)
	}
	// b's traffic to a now flows on the newer stream.
	b.tr.Send(testEnv("b", "a", 1))
	var f recvFrame
	if err := newer.RecvMsg(&f); err != nil || f.err != nil || len(f.batch.Envelopes) != 1 || f.batch.Envelopes[0].From != "b" {
		t.Fatalf("newer stream: %v %v %v", err, f.err, f.batch.Envelopes)
	}
}

package wireclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/pki"
)

// The transport's log lines the TLS test counts on the target (messaging/server.go).
const (
	acceptedLine = "messaging: stream accepted"
	endedLine    = "messaging: stream ended"
	refusedLine  = "messaging: inbound stream refused: claimed node does not match its certificate"
)

// TestStolenCertificateCannotHarmOrImpersonate runs the hostile peer of issue 9 against four
// nodes that speak mutual TLS with certificates from pki, holding the real, valid certificate
// of a registered node A that does not maintain: a stolen node certificate, the most TLS
// admits. Over TLS as A, every forgery of the plaintext test (higher epochs, A at the current
// epoch, a bootstrap, replays, envelopes naming the maintainer, garbage) leaves the cluster as
// unharmed as there. With A's certificate, claiming to be another registered node B (the
// maintainer, and a node that does not maintain) gets no stream (PermissionDenied), and B's
// stream to the target is not replaced: the target accepts no new stream as B, and the spans
// keep advancing.
func TestStolenCertificateCannotHarmOrImpersonate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and four nodes")
	}
	dir := t.TempDir()
	ids := []string{"n1", "n2", "n3", "n4"}
	if _, err := pki.WriteCluster(pki.ClusterSpec{Dir: dir, Cluster: "wire", Nodes: ids,
		Hosts: []string{"127.0.0.1"}, Valid: time.Hour}); err != nil {
		t.Fatal(err)
	}
	files := func(id string) etcdutil.TLSFiles {
		return etcdutil.TLSFiles{CA: pki.CertFile(dir, "ca"), Cert: pki.CertFile(dir, id), Key: pki.KeyFile(dir, id)}
	}
	nodeTLS := func(id string) *tls.Config {
		cfg, err := etcdutil.MutualTLS(files(id))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	verify, err := etcdutil.ClientTLS(etcdutil.TLSFiles{CA: pki.CertFile(dir, "ca")})
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, nodeTLS, HTTPS(verify))
	tg := c.target
	stolen := tg.Bystander // A: registered, not the maintainer, below the target
	creds := nodeTLS(stolen)
	// B: every other registered node that may dial the target, the maintainer among them.
	var others []string
	for _, id := range ids {
		if _, ok := c.nodes[id]; ok && id != stolen && id < tg.Node {
			others = append(others, id)
		}
	}
	if len(others) < 2 {
		t.Fatalf("want the maintainer and another node to impersonate, have %v", others)
	}
	targetLogs := c.nodes[tg.Node].logs
	accepted := func(peer string) int {
		return targetLogs.FilterMessage(acceptedLine).FilterField(zap.String("peer", peer)).Len()
	}
	// A target that came back (the first maintainer was n4, startCluster restarts it) is
	// dialled again by the others on their own time: wait for their streams rather than race
	// them (CI once checked before n2 had redialled the new n4).
	before := map[string]int{}
	for _, b := range others {
		deadline := time.Now().Add(15 * time.Second)
		for before[b] = accepted(b); before[b] == 0 && time.Now().Before(deadline); before[b] = accepted(b) {
			time.Sleep(50 * time.Millisecond)
		}
		if before[b] == 0 {
			t.Fatalf("%s has no stream to %s to protect after 15s", b, tg.Node)
		}
	}

	// 1. Every forgery, as A over TLS.
	c.run(t, AttacksAs(tg, stolen, creds))

	// 2. A's certificate claiming to be B gets no stream.
	ctx := context.Background()
	for _, b := range others {
		cl, err := Dial(ctx, Config{Addr: tg.Addr, ClusterID: tg.ClusterID, From: b, To: tg.Node, TLS: creds})
		if err == nil {
			_ = cl.Close()
			t.Errorf("%s's certificate opened a stream to %s as %s", stolen, tg.Node, b)
			continue
		}
		if !errors.Is(err, ErrRejected) || status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s's certificate as %s: %v, want ErrRejected with PermissionDenied", stolen, b, err)
		}
	}
	spansBefore, err := Spans(ctx, tg.API, maintainerStatusAddr(t, c), tg.Changefeed)
	if err != nil {
		t.Fatal(err)
	}

	c.checkUnharmed(t, func() {
		for _, b := range others {
			if got := accepted(b); got != before[b] {
				t.Errorf("%s accepted %d streams as %s during the attacks: %s's stream was replaced", tg.Node, got-before[b], b, b)
			}
		}
		refused := targetLogs.FilterMessage(refusedLine).FilterField(zap.String("certificate_node", stolen)).Len()
		if refused != len(others) {
			t.Errorf("%s refused %d streams with %s's certificate, want %d (one per impersonation)", tg.Node, refused, stolen, len(others))
		}
		spansAfter, err := Spans(ctx, tg.API, maintainerStatusAddr(t, c), tg.Changefeed)
		if err != nil {
			t.Fatal(err)
		}
		if err := advanced(spansBefore, spansAfter); err != nil {
			t.Errorf("after the impersonations: %v", err)
		}
	})
}

// maintainerStatusAddr is where the maintainer's status API listens, from its published status.
func maintainerStatusAddr(t *testing.T, c *cluster) string {
	t.Helper()
	st, err := etcdutil.GetStatus(context.Background(), c.cli, c.keys, c.target.Changefeed)
	if err != nil {
		t.Fatal(err)
	}
	return st.MaintainerStatusAddr
}

// advanced: every span replicating in before replicates in after on the same node with a later
// checkpoint, so every node's heartbeats kept reaching the maintainer.
func advanced(before, after []api.SpanInfo) error {
	now := map[string]api.SpanInfo{}
	for _, si := range after {
		now[si.Span] = si
	}
	for _, was := range before {
		if was.State != "replicating" {
			continue
		}
		is, ok := now[was.Span]
		switch {
		case !ok || is.State != "replicating" || is.Node != was.Node:
			return fmt.Errorf("span %s was replicating on %s, now %+v", was.Span, was.Node, is)
		case is.Checkpoint <= was.Checkpoint:
			return fmt.Errorf("span %s on %s: checkpoint stands at %d", was.Span, was.Node, is.Checkpoint)
		}
	}
	return nil
}

package messaging

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/tidemark/tidemark/pki"
)

// Identity binding. With TLS, the node ID a peer names in the stream metadata is only a claim;
// the certificate it proved it holds names the node it is (pki.NodeID). The acceptor refuses a
// stream whose claim differs from its certificate, and the dialer refuses a server whose
// certificate names another node than the one it dialled. Since the receiver also drops every
// envelope whose From is not the stream's node (deliver), a certificate of node A can neither
// speak as node B nor, by the newest-stream-wins rule, replace B's stream. Without TLS nothing
// can be checked: the claim is all there is (the server warns at start).

// errIdentity is what a refused identity wraps, so callers and tests can tell it apart.
var errIdentity = errors.New("messaging: peer identity")

// certNode returns the node ID named by the verified certificate of the remote end of ctx's
// stream. It is only meaningful with TLS.
func (t *GRPCTransport) certNode(ctx context.Context) (string, error) {
	p, ok := grpcpeer.FromContext(ctx)
	if !ok {
		return "", fmt.Errorf("%w: no peer information on the stream", errIdentity)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", fmt.Errorf("%w: stream from %s is not over TLS", errIdentity, p.Addr)
	}
	return verifiedNode(info.State, t.cfg.ClusterID)
}

// verifiedNode reads the node ID of the leaf of the first verified chain.
func verifiedNode(cs tls.ConnectionState, cluster string) (string, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", fmt.Errorf("%w: no verified certificate", errIdentity)
	}
	id, err := pki.NodeID(cs.VerifiedChains[0][0], cluster)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errIdentity, err)
	}
	return id, nil
}

// authenticateInbound checks a dialer's claimed node ID against its certificate. The error is a
// gRPC PermissionDenied status the dialer sees; certID is "" when the certificate names no node.
func (t *GRPCTransport) authenticateInbound(ctx context.Context, claimed string) (certID string, err error) {
	if t.cfg.TLS == nil {
		return "", nil
	}
	certID, err = t.certNode(ctx)
	if err != nil {
		return "", status.Errorf(codes.PermissionDenied, "messaging: stream claiming node %q refused: %v", claimed, err)
	}
	if certID != claimed {
		return certID, status.Errorf(codes.PermissionDenied,
			"messaging: stream claims node %q but its certificate names node %q; a node speaks only as the node of its certificate",
			claimed, certID)
	}
	return certID, nil
}

// remoteAddr is the remote address of ctx's stream, for logs.
func remoteAddr(ctx context.Context) string {
	if p, ok := grpcpeer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// dialTLS returns the client TLS config for dialling want: the node's config plus a check, run
// after the chain is verified, that the server's certificate names want. A process that holds
// another node's certificate and answers at want's address is thus refused at the handshake.
func (t *GRPCTransport) dialTLS(want string) *tls.Config {
	cfg := t.cfg.TLS.Clone()
	cluster, prev := t.cfg.ClusterID, cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if prev != nil {
			if err := prev(cs); err != nil {
				return err
			}
		}
		got, err := verifiedNode(cs, cluster)
		if err != nil {
			return fmt.Errorf("dialled node %q: %w", want, err)
		}
		if got != want {
			return fmt.Errorf("%w: dialled node %q but the server's certificate names node %q", errIdentity, want, got)
		}
		return nil
	}
	return cfg
}

package messaging

import (
	"context"
	"errors"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// Stream metadata keys. The dialer sends cluster, from and to; the acceptor answers with node in
// its response header, which is also the dialer's signal that the stream was accepted.
const (
	mdCluster = "tidemark-cluster"
	mdFrom    = "tidemark-from"
	mdTo      = "tidemark-to"
	mdNode    = "tidemark-node"
)

// messengerService is the acceptor side of the Messenger service.
type messengerService struct {
	heartbeatpb.UnimplementedMessengerServer
	t *GRPCTransport
}

// Stream accepts one dialed stream: checks who is calling, makes the stream the peer's current
// one (replacing an older one) and receives until it ends or is replaced.
func (s *messengerService) Stream(ss grpc.BidiStreamingServer[heartbeatpb.Batch, heartbeatpb.Batch]) error {
	t := s.t
	// The handler counts as one of the transport's goroutines, so that Close (gRPC's Stop does
	// not wait for handlers) returns only after it logged its last line.
	t.mu.Lock()
	closed := t.closed
	if !closed {
		t.wg.Add(1)
	}
	t.mu.Unlock()
	if closed {
		return status.Error(codes.Unavailable, "messaging: node is closing")
	}
	defer t.wg.Done()
	from, err := t.checkInbound(ss.Context())
	if err != nil {
		t.log.Warn("messaging: inbound stream rejected", zap.String("peer", from),
			zap.String("remote_addr", remoteAddr(ss.Context())), zap.Error(err))
		return err
	}
	if certID, err := t.authenticateInbound(ss.Context(), from); err != nil {
		// Worth a warning of its own: either a misissued certificate or a node trying to pass
		// for another.
		t.log.Warn("messaging: inbound stream refused: claimed node does not match its certificate",
			zap.String("claimed", from), zap.String("certificate_node", certID),
			zap.String("remote_addr", remoteAddr(ss.Context())), zap.Error(err))
		return err
	}
	p, st, ok := t.inboundPeer(from)
	if !ok {
		return status.Error(codes.Unavailable, "messaging: node is closing")
	}
	st.send = func(b *heartbeatpb.Batch) error { return ss.SendMsg(b) }
	accept := func() error { return ss.SendHeader(metadata.Pairs(mdNode, t.cfg.NodeID)) }
	if err := p.attach(st, accept); err != nil {
		t.endInbound(p, st)
		if errors.Is(err, errPeerClosed) {
			// The node is closing, or the peer's previous stream ended and took its
			// unregistered entry along. Either way the dialer retries.
			return status.Error(codes.Unavailable, "messaging: peer entry closed during the handshake, redial")
		}
		return err
	}
	t.log.Info("messaging: stream accepted", zap.String("peer", from), zap.Uint64("stream", st.id))

	// The receiver runs on its own goroutine because only returning from this handler can end
	// a server stream: that is how a replaced or closed stream is cut off while it is blocked
	// in RecvMsg. The handler does not wait for a write in flight on the sender goroutine: a
	// write blocked on flow control would hold it, and gRPC fails writes to a finished stream.
	recvDone := make(chan error, 1)
	t.mu.Lock()
	started := t.spawnLocked(func() { recvDone <- t.receive(p, st, ss.RecvMsg) })
	t.mu.Unlock()
	if !started {
		t.endInbound(p, st)
		return status.Error(codes.Unavailable, "messaging: node is closing")
	}
	select {
	case err = <-recvDone:
	case <-st.done:
		err = status.Error(codes.Aborted, "messaging: stream replaced or closed")
	}
	t.endInbound(p, st)
	t.log.Info("messaging: stream ended", zap.String("peer", from), zap.Uint64("stream", st.id), zap.Error(err))
	return err
}

// checkInbound validates the dialer's metadata and returns its node ID. Errors are gRPC status
// errors the dialer sees as the stream's result.
func (t *GRPCTransport) checkInbound(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	cluster, from, to := first(md, mdCluster), first(md, mdFrom), first(md, mdTo)
	switch {
	case cluster != t.cfg.ClusterID:
		return from, status.Errorf(codes.PermissionDenied,
			"messaging: stream from node %q is for cluster %q, this is cluster %q", from, cluster, t.cfg.ClusterID)
	case from == "":
		return from, status.Error(codes.InvalidArgument, "messaging: stream without a node ID")
	case to != t.cfg.NodeID:
		return from, status.Errorf(codes.FailedPrecondition,
			"messaging: stream from node %q for node %q reached node %q", from, to, t.cfg.NodeID)
	case from == t.cfg.NodeID:
		return from, status.Errorf(codes.InvalidArgument, "messaging: stream from node %q to itself", from)
	case !(from < t.cfg.NodeID):
		return from, status.Errorf(codes.FailedPrecondition,
			"messaging: node %q must not dial node %q: the smaller ID dials", from, t.cfg.NodeID)
	}
	return from, nil
}

// inboundPeer finds or creates the peer of an accepted stream: a node may dial us before the
// registry told us about it, and it must still be able to talk.
func (t *GRPCTransport) inboundPeer(id string) (*peer, *stream, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peers[id]
	if p == nil {
		if p = t.addPeerLocked(id); p == nil {
			return nil, nil, false
		}
		t.log.Info("messaging: peer known from its inbound stream", zap.String("peer", id))
	}
	return p, newStream(t.streams.Add(1), nil), true
}

// endInbound detaches an accepted stream. A peer that the registry never listed lives only as
// long as its stream, so nodes that came and went unregistered do not pile up.
func (t *GRPCTransport) endInbound(p *peer, st *stream) {
	if !p.detach(st) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p.mu.Lock()
	orphan := !p.registered && p.cur == nil
	p.mu.Unlock()
	if orphan && t.peers[p.id] == p {
		t.removePeerLocked(p, "unregistered and its stream ended")
	}
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

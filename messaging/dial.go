package messaging

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// dialOptions are the options of the connection to peer: with TLS, the handshake also checks
// that the server's certificate names peer (dialTLS).
func (t *GRPCTransport) dialOptions(peer string) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if t.cfg.TLS != nil {
		creds = credentials.NewTLS(t.dialTLS(peer))
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.ForceCodec(gogoCodec{}),
			grpc.MaxCallRecvMsgSize(t.cfg.MaxMsgSize),
			grpc.MaxCallSendMsgSize(t.cfg.MaxMsgSize),
		),
		// gRPC's own reconnect backoff defaults to 1s..120s, far too slow to notice a restarted
		// peer; keep it in line with the stream backoff.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: grpcbackoff.Config{
				BaseDelay: t.cfg.BackoffMin, Multiplier: 2, Jitter: 0.2, MaxDelay: t.cfg.BackoffMax,
			},
			MinConnectTimeout: t.cfg.HandshakeTimeout,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: keepaliveTime, Timeout: keepaliveTimeout, PermitWithoutStream: true,
		}),
	}
}

// startDialLocked starts the dial loop for p at addr. t.mu is held.
func (t *GRPCTransport) startDialLocked(p *peer, addr string) {
	ctx, cancel := context.WithCancel(p.ctx)
	p.mu.Lock()
	p.dialCancel = cancel
	p.mu.Unlock()
	if !t.spawnLocked(func() { t.dialLoop(ctx, p, addr) }) {
		cancel()
	}
}

// dialLoop keeps one stream to p open for as long as ctx lives, redialing with backoff.
func (t *GRPCTransport) dialLoop(ctx context.Context, p *peer, addr string) {
	cc, err := grpc.NewClient(addr, t.dialOptions(p.id)...)
	if err != nil {
		t.log.Error("messaging: cannot dial peer", zap.String("peer", p.id), zap.String("addr", addr), zap.Error(err))
		return
	}
	defer cc.Close()
	b := newBackoff(t.cfg.BackoffMin, t.cfg.BackoffMax, t.cfg.NodeID+"/"+p.id)
	for {
		established, err := t.runDialedStream(ctx, p, cc, addr)
		if ctx.Err() != nil {
			return
		}
		if established {
			b.reset()
		}
		delay := b.next()
		t.log.Info("messaging: stream to peer down, redialing", zap.String("peer", p.id),
			zap.String("addr", addr), zap.Duration("backoff", delay), zap.Error(err))
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

// runDialedStream opens one stream to p, waits for the acceptor's header naming p, and receives
// on it until it ends. established reports whether the stream got past the handshake.
func (t *GRPCTransport) runDialedStream(ctx context.Context, p *peer, cc *grpc.ClientConn, addr string) (established bool, err error) {
	md := metadata.Pairs(mdCluster, t.cfg.ClusterID, mdFrom, t.cfg.NodeID, mdTo, p.id)
	sctx, cancel := context.WithCancel(metadata.NewOutgoingContext(ctx, md))
	st := newStream(t.streams.Add(1), cancel)
	defer st.close()
	cs, err := heartbeatpb.NewMessengerClient(cc).Stream(sctx)
	if err != nil {
		return false, fmt.Errorf("messaging: open stream to %s at %s: %w", p.id, addr, err)
	}
	// Header blocks until the acceptor answers or the stream fails; the timer bounds a peer that
	// accepts the connection but never answers.
	timer := time.AfterFunc(t.cfg.HandshakeTimeout, cancel)
	hdr, _ := cs.Header()
	if !timer.Stop() {
		return false, fmt.Errorf("messaging: handshake with %s at %s timed out after %v", p.id, addr, t.cfg.HandshakeTimeout)
	}
	if hdr == nil {
		// The stream failed before it was accepted; its status says why (wrong cluster, ...).
		err := cs.RecvMsg(&recvFrame{})
		return false, fmt.Errorf("messaging: stream to %s at %s rejected: %w", p.id, addr, err)
	}
	if got := first(hdr, mdNode); got != p.id {
		return false, fmt.Errorf("messaging: %s answered as node %q, want %q", addr, got, p.id)
	}
	st.send = func(b *heartbeatpb.Batch) error { return cs.SendMsg(b) }
	if err := p.attach(st, nil); err != nil {
		return false, nil
	}
	t.log.Info("messaging: stream established", zap.String("peer", p.id), zap.String("addr", addr), zap.Uint64("stream", st.id))
	err = t.receive(p, st, cs.RecvMsg)
	p.detach(st)
	return true, err
}

// backoff is exponential backoff with "equal jitter": each delay is drawn from [d/2, d] where d
// doubles from min up to max, so peers that lost each other at the same moment do not redial in
// lockstep.
type backoff struct {
	min, max, cur time.Duration
	rnd           *rand.Rand
}

// newBackoff seeds its own generator from the clock and a name, so no global state is shared.
func newBackoff(min, max time.Duration, name string) *backoff {
	h := fnv.New64a()
	h.Write([]byte(name))
	return &backoff{min: min, max: max, rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), h.Sum64()))}
}

func (b *backoff) reset() { b.cur = 0 }

func (b *backoff) next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = b.min
	case b.cur < b.max/2:
		b.cur *= 2
	default:
		b.cur = b.max
	}
	half := b.cur / 2
	return half + time.Duration(b.rnd.Int64N(int64(b.cur-half)+1))
}

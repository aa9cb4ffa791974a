package messaging

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// keepaliveTime is how often an idle connection is probed, so a peer cut off by the network
// (no RST) is noticed within seconds rather than at the OS TCP timeout.
const (
	keepaliveTime    = 10 * time.Second
	keepaliveTimeout = 5 * time.Second
)

// GRPCTransport is the Transport between tidemark nodes over gRPC. See the package comment for
// the stream rules.
type GRPCTransport struct {
	cfg      GRPCConfig
	log      *zap.Logger
	handler  Handler
	counters *counters
	lis      net.Listener
	server   *grpc.Server
	ctx      context.Context
	cancel   context.CancelFunc
	streams  atomic.Uint64 // stream IDs, for logs

	mu     sync.Mutex
	closed bool
	self   *peer
	peers  map[string]*peer
	wg     sync.WaitGroup // every goroutine the transport started; Add only under mu while open

	closeOnce sync.Once
}

var _ Transport = (*GRPCTransport)(nil)

// NewGRPC listens, starts serving the Messenger service and returns the transport. Peers come
// later through SetPeers. handler receives every envelope addressed to cfg.NodeID.
func NewGRPC(cfg GRPCConfig, handler Handler) (*GRPCTransport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if handler == nil {
		return nil, errors.New("messaging: handler is nil")
	}
	counters, err := newCounters(cfg.NodeID, cfg.Registerer)
	if err != nil {
		return nil, err
	}
	lis := cfg.Listener
	if lis == nil {
		if lis, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
			counters.unregister(cfg.Registerer)
			return nil, listenError(cfg.ListenAddr, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &GRPCTransport{
		cfg: cfg, handler: handler, counters: counters, lis: lis, ctx: ctx, cancel: cancel,
		log:   cfg.Logger, // carries the node's own fields already (see GRPCConfig.Logger)
		peers: make(map[string]*peer),
	}
	t.server = grpc.NewServer(t.serverOptions()...)
	heartbeatpb.RegisterMessengerServer(t.server, &messengerService{t: t})

	t.mu.Lock()
	t.self = newPeer(ctx, cfg.NodeID, cfg.QueueSize)
	local := newStream(t.streams.Add(1), nil)
	local.send = t.deliverLocal
	if err := t.self.attach(local, nil); err != nil {
		panic("messaging: a fresh peer refused its first stream") // cannot happen: nothing closed it
	}
	t.spawnLocked(func() { t.runSender(t.self) })
	t.spawnLocked(t.serve)
	t.mu.Unlock()
	t.log.Info("messaging: listening", zap.String("addr", lis.Addr().String()), zap.Bool("tls", cfg.TLS != nil))
	return t, nil
}

// listenError names the address and keeps the OS reason short ("address already in use") while
// still wrapping it, so errors.Is(err, syscall.EADDRINUSE) works.
func listenError(addr string, err error) error {
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) {
		return fmt.Errorf("messaging: listen %s: %w", addr, sysErr.Err)
	}
	return fmt.Errorf("messaging: listen %s: %w", addr, err)
}

func (t *GRPCTransport) serverOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.ForceServerCodec(gogoCodec{}),
		grpc.MaxRecvMsgSize(t.cfg.MaxMsgSize),
		grpc.MaxSendMsgSize(t.cfg.MaxMsgSize),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
		// Let dialers ping as often as they do; otherwise the server would close them with
		// "too_many_pings".
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveTime / 2, PermitWithoutStream: true}),
	}
	if t.cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(t.cfg.TLS.Clone())))
	}
	return opts
}

// Addr is the address the transport listens on, with the real port when ListenAddr used ":0".
func (t *GRPCTransport) Addr() string { return t.lis.Addr().String() }

// spawnLocked starts fn as a tracked goroutine unless the transport is closed. t.mu must be held:
// that is what keeps every wg.Add before Close's wg.Wait.
func (t *GRPCTransport) spawnLocked(fn func()) bool {
	if t.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		fn()
	}()
	return true
}

func (t *GRPCTransport) serve() {
	if err := t.server.Serve(t.lis); err != nil {
		t.log.Error("messaging: server stopped", zap.Error(err))
	}
}

// Send queues env for env.To. It never blocks; see Transport.
func (t *GRPCTransport) Send(env *heartbeatpb.Envelope) {
	if env == nil {
		t.counters.addDropped("", dropInvalid, 1)
		t.log.Warn("messaging: send of a nil envelope dropped")
		return
	}
	if env.ClusterId != t.cfg.ClusterID {
		t.counters.addDropped(env.To, dropWrongCluster, 1)
		t.log.Warn("messaging: send with a foreign cluster ID dropped",
			zap.String("peer", env.To), zap.String("envelope_cluster", env.ClusterId), zap.String("changefeed", env.Changefeed))
		return
	}
	if env.From != t.cfg.NodeID {
		t.counters.addDropped(env.To, dropInvalid, 1)
		t.log.Warn("messaging: send with a wrong sender dropped",
			zap.String("peer", env.To), zap.String("from", env.From), zap.String("changefeed", env.Changefeed))
		return
	}
	t.mu.Lock()
	closed := t.closed
	p := t.self
	if env.To != t.cfg.NodeID {
		p = t.peers[env.To]
	}
	t.mu.Unlock()
	switch {
	case closed:
		t.counters.addDropped(env.To, dropClosed, 1)
		return
	case p == nil:
		t.counters.addDropped(env.To, dropNoPeer, 1)
		t.log.Debug("messaging: send to an unknown peer dropped", zap.String("peer", env.To), zap.String("changefeed", env.Changefeed))
		if t.cfg.UnknownPeer != nil {
			t.cfg.UnknownPeer(env.To)
		}
		return
	}
	ok, firstFull := p.enqueue(env)
	if ok {
		return
	}
	t.counters.addDropped(env.To, dropQueueFull, 1)
	if firstFull {
		t.log.Warn("messaging: peer queue full, dropping until it drains",
			zap.String("peer", env.To), zap.Int("queue_size", t.cfg.QueueSize))
	}
}

// SetPeers applies the registry's view of the cluster; see Transport.
func (t *GRPCTransport) SetPeers(peers map[string]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	for id, addr := range peers {
		if id == t.cfg.NodeID {
			continue
		}
		if id == "" || addr == "" {
			t.log.Warn("messaging: ignoring peer without ID or address", zap.String("peer", id), zap.String("addr", addr))
			continue
		}
		t.setPeerLocked(id, addr)
	}
	for id, p := range t.peers {
		if _, ok := peers[id]; ok || !p.registered {
			continue
		}
		t.removePeerLocked(p, "left the registry")
	}
}

// setPeerLocked adds a peer or updates its address. t.mu is held.
func (t *GRPCTransport) setPeerLocked(id, addr string) {
	p := t.peers[id]
	if p == nil {
		if p = t.addPeerLocked(id); p == nil {
			return
		}
		t.log.Info("messaging: peer added", zap.String("peer", id), zap.String("addr", addr))
	}
	p.mu.Lock()
	old, dialing := p.addr, p.dialCancel != nil
	p.addr = addr
	p.registered = true
	p.mu.Unlock()
	if old == addr && (dialing || !t.dials(id)) {
		return
	}
	if old != "" && old != addr {
		// The process at the old address is not the peer any more (or soon will not be):
		// its stream must not carry another envelope.
		t.log.Info("messaging: peer changed address", zap.String("peer", id), zap.String("old_addr", old), zap.String("addr", addr))
		p.restart()
	}
	if t.dials(id) {
		t.startDialLocked(p, addr)
	}
}

// addPeerLocked creates a peer and its sender goroutine. t.mu is held.
func (t *GRPCTransport) addPeerLocked(id string) *peer {
	p := newPeer(t.ctx, id, t.cfg.QueueSize)
	if !t.spawnLocked(func() { t.runSender(p) }) {
		p.cancel()
		return nil
	}
	t.peers[id] = p
	return p
}

// removePeerLocked forgets a peer, closes its stream and counts its queue as dropped. t.mu is held.
func (t *GRPCTransport) removePeerLocked(p *peer, why string) {
	delete(t.peers, p.id)
	n := p.close()
	t.counters.addDropped(p.id, dropClosed, n)
	t.log.Info("messaging: peer removed", zap.String("peer", p.id), zap.String("why", why), zap.Int("dropped", n))
}

// dials reports whether this node dials peer: the lexically smaller ID dials, so each pair has
// exactly one stream without any negotiation.
func (t *GRPCTransport) dials(peer string) bool { return t.cfg.NodeID < peer }

// Stats returns the totals and the peers' current state.
func (t *GRPCTransport) Stats() Stats {
	st := t.counters.stats()
	t.mu.Lock()
	peers := make([]*peer, 0, len(t.peers))
	for _, p := range t.peers {
		peers = append(peers, p)
	}
	t.mu.Unlock()
	for _, p := range peers {
		st.Peers = append(st.Peers, p.snapshot())
	}
	slices.SortFunc(st.Peers, func(a, b PeerStats) int { return strings.Compare(a.ID, b.ID) })
	return st
}

// Close stops dialing, closes every stream and the listener, and waits for every goroutine the
// transport started. Envelopes still queued are counted as dropped (closed). Idempotent.
func (t *GRPCTransport) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		peers := t.peers
		t.peers = map[string]*peer{}
		self := t.self
		t.mu.Unlock()

		t.cancel()
		for _, p := range peers {
			t.counters.addDropped(p.id, dropClosed, p.close())
		}
		t.counters.addDropped(self.id, dropClosed, self.close())
		t.server.Stop() // closes the listener and ends every accepted stream
		t.wg.Wait()
		t.counters.unregister(t.cfg.Registerer)
		t.log.Info("messaging: closed")
	})
	return nil
}

package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/messaging"
	"github.com/tidemark/tidemark/wait"
)

// Server is one tidemark node.
type Server struct {
	cfg     Config
	log     *zap.Logger
	nodeID  string
	keys    etcdutil.Keys
	reg     *prometheus.Registry
	metrics *metrics

	startedAt time.Time

	// Set up by Run.
	cli        *clientv3.Client
	transport  messaging.Transport
	advertised string
	statusAddr string // bound address of the status API, "" when off

	// lostLease is the lease of the last session that ended without a graceful stop; only Run's
	// goroutine touches it. etcd may still hold it (see revokeLost).
	lostLease clientv3.LeaseID

	workers *workerSet
	nodes   *latest[map[string]etcdutil.NodeInfo]
	// nodesMu orders the updates of nodes and of the transport's peers; nodesRev is the etcd
	// revision of the registry they show (nodeview.go).
	nodesMu      sync.Mutex
	nodesRev     int64
	nodesReading bool      // a refreshNodesSoon read is out
	nodesReadAt  time.Time // when the last one started
	// watchNodes follows the registry: etcdutil.WatchNodes, which a test may wrap (to delay it).
	watchNodes func(context.Context, *clientv3.Client, etcdutil.Keys) (<-chan etcdutil.NodeSet, error)
	terms      *terms      // maintainer terms running here, for the HTTP API (api.go)
	health     *nodeHealth // sink health of the dispatcher manager loops (health.go)
}

// New validates cfg and prepares a node. It opens no connection; Run does.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	id, err := resolveNodeID(&cfg)
	if err != nil {
		return nil, err
	}
	cfg.NodeID = id
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With(zap.String("node", id), zap.String("cluster", cfg.ClusterID)),
		nodeID:  id,
		keys:    etcdutil.Keys{Cluster: cfg.ClusterID},
		reg:     reg,
		metrics: newMetrics(reg),
		workers: newWorkerSet(),
		health:  newNodeHealth(),
		nodes:   newLatest(map[string]etcdutil.NodeInfo{}),
		terms:   newTerms(),

		watchNodes: etcdutil.WatchNodes,
	}
	reg.MustRegister(newMaintainerCollector(s.terms))
	return s, nil
}

// NodeID is this node's ID (configured, or loaded from the data dir).
func (s *Server) NodeID() string { return s.nodeID }

// Run connects to etcd, starts the transport and the status API, and runs sessions until ctx
// ends. A lost session stops all work of this node and a new session starts it again, empty.
// It returns nil after a graceful stop, or the error that made the node unable to run.
func (s *Server) Run(ctx context.Context) error {
	s.startedAt = time.Now()
	cli, err := etcdutil.Connect(ctx, s.cfg.EtcdEndpoints, s.cfg.EtcdTLS, 5*time.Second)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.cli = cli
	defer cli.Close()

	tr, err := messaging.NewGRPC(messaging.GRPCConfig{
		NodeID:     s.nodeID,
		ClusterID:  s.cfg.ClusterID,
		ListenAddr: s.cfg.Addr,
		TLS:        s.cfg.PeerTLS,
		Registerer: s.reg,
		Logger:     s.log,
		// A send to a node this node's watch has not shown yet: ask etcd (nodeview.go).
		UnknownPeer: func(string) { s.refreshNodesSoon(s.log) },
	}, s.route)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.transport = tr
	defer tr.Close()
	// A listen address with port 0 (tests) is advertised as the port actually bound.
	s.advertised = tr.Addr()

	if s.cfg.StatusAddr != "" {
		srv, err := s.startStatusAPI(ctx)
		if err != nil {
			return err
		}
		defer func() {
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdownCtx)
		}()
	}
	s.log.Info("node started", zap.String("addr", s.cfg.Addr), zap.String("status_addr", s.cfg.StatusAddr),
		zap.Strings("etcd", s.cfg.EtcdEndpoints), zap.Int("pid", os.Getpid()))

	backoff := newSessionBackoff(s.cfg.SessionTTL)
	for ctx.Err() == nil {
		attempt := time.Now()
		lived, err := s.runSession(ctx)
		if ctx.Err() != nil {
			break
		}
		s.metrics.sessionsLost.Inc()
		// The backoff spaces the starts of two attempts: an attempt that already took that long
		// (a lease grant that waited out its deadline while etcd was unreachable) is followed by
		// the next at once, so a node is back within one grant deadline of etcd serving again.
		pause := max(0, backoff.next(lived)-time.Since(attempt))
		s.log.Warn("etcd session ended; every dispatcher and maintainer of it was stopped, starting a new session",
			zap.Error(err), zap.Duration("session_lived", lived.Round(time.Millisecond)), zap.Duration("backoff", pause))
		wait.Sleep(ctx, pause)
	}
	s.log.Info("node stopped")
	return nil
}

// runSession runs one etcd session: registration, watches and every changefeed worker. It
// returns when ctx ends (graceful: maintainers resign, the lease is revoked) or the session is
// lost, with how long the session lived (0 when it could not be established).
func (s *Server) runSession(ctx context.Context) (lived time.Duration, _ error) {
	sess, err := newSession(ctx, s.cli, s.cfg.SessionTTL)
	if err != nil {
		return 0, fmt.Errorf("server: new etcd session: %w", err)
	}
	established := time.Now()
	s.revokeLost(ctx)
	guard := newLeaseGuard(s.cfg.SessionTTL, time.Now())
	incarnation := uint64(time.Now().UnixNano())
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		lived = time.Since(established)
		cancel()
		wg.Wait() // every loop has stopped: no dispatcher of this session works any more
		sess.Orphan()
		if ctx.Err() != nil {
			// Graceful stop: give the lease back so others need not wait for the TTL. Not
			// sess.Close: it revokes under the session's context, which ctx already cancelled.
			rctx, rcancel := context.WithTimeout(context.Background(), teardownTimeout(s.cfg.SessionTTL))
			_, _ = s.cli.Revoke(rctx, sess.Lease())
			rcancel()
		} else {
			s.lostLease = sess.Lease()
		}
	}()
	wg.Add(1)
	go func() { defer wg.Done(); guard.watch(sctx, s.cli, sess.Lease()) }()
	// The setup calls below (register, first listings) have no deadline of their own: ending
	// sctx with the session bounds them by the TTL when etcd stops answering half-way.
	stopWithSession := context.AfterFunc(sess.Ctx(), cancel)
	defer stopWithSession()

	info := etcdutil.NodeInfo{
		ID: s.nodeID, Addr: s.advertised, StatusAddr: s.statusAddr, Version: s.cfg.Version,
		PID: os.Getpid(), StartedAt: s.startedAt, Incarnation: incarnation,
	}
	if err := etcdutil.RegisterNode(sctx, sess, s.keys, info); err != nil {
		return 0, fmt.Errorf("server: register node: %w", err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); guard.watchRegistration(sctx, s.cli, s.keys.Node(s.nodeID)) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.runHealthMarker(sctx, sess.Lease()) }()
	s.resetNodeView()
	nodesCh, err := s.watchNodes(sctx, s.cli, s.keys)
	if err != nil {
		return 0, fmt.Errorf("server: watch nodes: %w", err)
	}
	feedsCh, err := etcdutil.WatchChangefeeds(sctx, s.cli, s.keys)
	if err != nil {
		return 0, fmt.Errorf("server: watch changefeeds: %w", err)
	}
	env := &sessionEnv{server: s, session: sess, guard: guard, incarnation: incarnation}
	defer s.workers.stopAll()
	for {
		select {
		case <-sctx.Done():
			return 0, sctx.Err()
		case <-sess.Done():
			return 0, errors.New("server: etcd session expired")
		case <-guard.Lost():
			return 0, errors.New("server: node registration deleted (lease revoked or expired)")
		case nodes, ok := <-nodesCh:
			if !ok {
				return 0, errors.New("server: node watch closed")
			}
			s.applyNodes(nodes)
		case feeds, ok := <-feedsCh:
			if !ok {
				return 0, errors.New("server: changefeed watch closed")
			}
			s.workers.reconcile(sctx, &wg, env, feeds)
		}
	}
}

// route delivers an inbound envelope to the loop that handles its body. It never blocks: a full
// inbox drops the envelope (counted); the sender's resend repairs that.
func (s *Server) route(env *heartbeatpb.Envelope) {
	if env == nil {
		return
	}
	w := s.workers.get(env.Changefeed)
	if w == nil {
		s.metrics.inboxDropped.WithLabelValues("unknown_changefeed").Inc()
		return
	}
	inbox := w.dmInbox
	switch env.Body.(type) {
	case *heartbeatpb.Envelope_Heartbeat, *heartbeatpb.Envelope_BootstrapResponse:
		inbox = w.maintainerInbox
	}
	select {
	case inbox <- env:
	default:
		s.metrics.inboxDropped.WithLabelValues("inbox_full").Inc()
	}
}

// sessionEnv is what the loops of one session share.
type sessionEnv struct {
	server      *Server
	session     *concurrency.Session
	guard       *leaseGuard
	incarnation uint64
}

// statusServer wraps the HTTP server so Run can shut it down.
type statusServer = http.Server

package embedetcd

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Defaults for a Config field left zero.
const (
	DefaultName       = "tidemark-etcd"
	DefaultTickMs     = 100
	DefaultElectionMs = 1000
	DefaultLogLevel   = "error"
	// readyTimeout bounds how long Start waits for the member to serve; a single member with a
	// fresh data dir is ready in well under a second.
	readyTimeout = 20 * time.Second
)

// Config describes the member to start. Every field may be left zero.
type Config struct {
	Dir        string // data dir; "" = a temporary dir removed by Close
	Name       string // member name; "" = DefaultName
	ClientURL  string // e.g. http://127.0.0.1:2379; "" = a free 127.0.0.1 port
	PeerURL    string // e.g. http://127.0.0.1:2380; "" = a free 127.0.0.1 port
	TickMs     uint   // raft heartbeat interval; 0 = DefaultTickMs
	ElectionMs uint   // raft election timeout; 0 = DefaultElectionMs
	LogLevel   string // etcd server log level (debug, info, warn, error); "" = "error"
}

// Server is one running embedded etcd member.
type Server struct {
	etcd       *embed.Etcd
	clientURLs []string
	dir        string
	removeDir  bool // the dir was created by Start and goes away with the server
	closing    *atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

// Start starts a member and waits until it serves clients. A busy port or a bad URL gives an
// error naming it; nothing is left running on error.
func Start(cfg Config) (*Server, error) {
	cfg.fillDefaults()
	clientURL, peerURL, err := pickURLs(cfg.ClientURL, cfg.PeerURL)
	if err != nil {
		return nil, err
	}
	dir, removeDir := cfg.Dir, false
	if dir == "" {
		if dir, err = os.MkdirTemp("", "tidemark-etcd-*"); err != nil {
			return nil, fmt.Errorf("embedetcd: create data dir: %w", err)
		}
		removeDir = true
	}
	closing := new(atomic.Bool)
	e, err := startEtcd(cfg, dir, clientURL, peerURL, closing)
	if err != nil {
		if removeDir {
			_ = os.RemoveAll(dir)
		}
		return nil, err
	}
	s := &Server{etcd: e, clientURLs: []string{clientURL.String()}, dir: dir, removeDir: removeDir, closing: closing}
	return s, nil
}

func (c *Config) fillDefaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.TickMs == 0 {
		c.TickMs = DefaultTickMs
	}
	if c.ElectionMs == 0 {
		c.ElectionMs = DefaultElectionMs
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
}

// startEtcd configures and starts the member, then waits until it is ready or fails.
func startEtcd(cfg Config, dir string, clientURL, peerURL *url.URL, closing *atomic.Bool) (*embed.Etcd, error) {
	lg, err := newServerLogger(cfg.LogLevel, closing)
	if err != nil {
		return nil, err
	}
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = dir
	ec.TickMs, ec.ElectionMs = cfg.TickMs, cfg.ElectionMs
	ec.LogLevel = cfg.LogLevel
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{*clientURL}, []url.URL{*clientURL}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{*peerURL}, []url.URL{*peerURL}
	ec.InitialCluster = ec.InitialClusterFromName(cfg.Name)
	// The HTTP gateway and metrics listeners are not needed and only slow the start down.
	ec.EnableGRPCGateway = false
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: start etcd (client %s, peer %s): %w", clientURL, peerURL, describe(err))
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		closing.Store(true)
		e.Close()
		return nil, fmt.Errorf("embedetcd: etcd at %s failed while starting: %w", clientURL, err)
	case <-time.After(readyTimeout):
		closing.Store(true)
		e.Close()
		return nil, fmt.Errorf("embedetcd: etcd at %s not ready after %v", clientURL, readyTimeout)
	}
}

// describe adds a hint to the one start failure users hit most.
func describe(err error) error {
	if strings.Contains(err.Error(), "address already in use") {
		return fmt.Errorf("port already in use (another etcd running?): %w", err)
	}
	return err
}

// pickURLs parses the given URLs, replacing an empty one with a free port on 127.0.0.1.
func pickURLs(client, peer string) (*url.URL, *url.URL, error) {
	cu, err := parseOrPick("client", client)
	if err != nil {
		return nil, nil, err
	}
	pu, err := parseOrPick("peer", peer)
	if err != nil {
		return nil, nil, err
	}
	if cu.Host == pu.Host {
		return nil, nil, fmt.Errorf("embedetcd: client and peer URL share the address %s", cu.Host)
	}
	return cu, pu, nil
}

func parseOrPick(kind, raw string) (*url.URL, error) {
	if raw == "" {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("embedetcd: pick a free %s port: %w", kind, err)
		}
		raw = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: bad %s URL %q: %w", kind, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "unix" || u.Host == "" {
		return nil, fmt.Errorf("embedetcd: bad %s URL %q: want http://host:port", kind, raw)
	}
	return u, nil
}

// freePort asks the kernel for a free port. Another process could take it before etcd binds it;
// StartForTest retries for that reason.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("listener has no TCP address")
	}
	return addr.Port, nil
}

// ClientURLs are the URLs clients connect to.
func (s *Server) ClientURLs() []string { return append([]string(nil), s.clientURLs...) }

// Dir is the member's data directory.
func (s *Server) Dir() string { return s.dir }

// Close stops the member and waits until it has stopped; later calls return the first result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.etcd.Close()
		<-s.etcd.Server.StopNotify()
		if s.removeDir {
			if err := os.RemoveAll(s.dir); err != nil {
				s.closeErr = fmt.Errorf("embedetcd: remove data dir %s: %w", s.dir, err)
			}
		}
	})
	return s.closeErr
}

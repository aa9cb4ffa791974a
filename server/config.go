package server

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/etcdutil"
)

// Config is everything one node needs. Validate fills the defaults.
type Config struct {
	ClusterID     string
	NodeID        string // "" = read from DataDir/node-id, created on first start
	DataDir       string
	EtcdEndpoints []string
	// Addr is the gRPC listen address, advertised to peers as is; so it must be reachable, not 0.0.0.0.
	Addr string
	// StatusAddr is the HTTP status API listen address; "" turns it off.
	StatusAddr        string
	SessionTTL        time.Duration // etcd session lease; default 5s
	TickInterval      time.Duration // how often the cores tick; default 100ms
	HeartbeatInterval time.Duration // periodic heartbeat (journal) period; default 1s
	// PollInterval and PollPerDispatcher space a node's polls of all its dispatchers'
	// checkpoints: at least PollInterval (default 0: every tick) plus PollPerDispatcher (default
	// 1.5us) per dispatcher the node runs. A poll visits every dispatcher, so polling a third of
	// a million on every tick cost a node more CPU than anything else; with the defaults such a
	// node polls every 500ms, and one of a few thousand dispatchers still on every tick, so its
	// checkpoints reach the maintainer as soon as before.
	PollInterval      time.Duration
	PollPerDispatcher time.Duration
	// StatusPublishInterval is how often a maintainer writes its changefeed status to etcd; default 1s.
	StatusPublishInterval time.Duration
	// UnhealthyAfter is how long a sink may fail before the node marks itself unhealthy in
	// etcd, so that maintainers move its spans away; default 30s.
	UnhealthyAfter time.Duration
	Version        string
	Logger         *zap.Logger
	// PeerTLS, when set, secures gRPC between nodes with mutual TLS (etcdutil.MutualTLS);
	// EtcdTLS the etcd client (etcdutil.ClientTLS). nil means plaintext.
	PeerTLS, EtcdTLS *tls.Config
	// With PeerTLS the status API serves HTTPS with the node's certificate; clients that show
	// a certificate are verified against the same CA, and StatusRequireClientCert refuses those
	// that show none.
	StatusRequireClientCert bool
	// EnablePprof serves /debug/pprof/ on the status API; off by default, since profiles and
	// the command line are no one else's business.
	EnablePprof bool
	// Dispatchers are the dispatcher kinds this node can run, by the name a changefeed gives
	// (etcdutil.ChangefeedInfo.Dispatcher). The built-in ones are always there; an entry with a
	// built-in's name replaces it.
	Dispatchers map[string]DispatcherKind
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// Validate checks c and fills defaults. The error names the field that is wrong.
func (c *Config) Validate() error {
	if !idPattern.MatchString(c.ClusterID) {
		return fmt.Errorf("server: cluster id %q: want letters, digits, '_', '.', '-' (at most 128)", c.ClusterID)
	}
	if c.NodeID != "" && !idPattern.MatchString(c.NodeID) {
		return fmt.Errorf("server: node id %q: want letters, digits, '_', '.', '-' (at most 128)", c.NodeID)
	}
	if c.DataDir == "" {
		return errors.New("server: data dir is required")
	}
	if len(c.EtcdEndpoints) == 0 {
		return errors.New("server: at least one etcd endpoint is required")
	}
	for _, e := range c.EtcdEndpoints {
		if strings.TrimSpace(e) == "" {
			return errors.New("server: empty etcd endpoint")
		}
	}
	if err := checkHostPort("addr", c.Addr, true); err != nil {
		return err
	}
	if c.StatusAddr != "" {
		if err := checkHostPort("status addr", c.StatusAddr, false); err != nil {
			return err
		}
	}
	if c.StatusRequireClientCert && c.PeerTLS == nil {
		return errors.New("server: requiring client certificates on the status API needs peer TLS (its CA verifies them)")
	}
	defaults := []struct {
		name string
		d    *time.Duration
		def  time.Duration
		min  time.Duration
	}{
		{"session ttl", &c.SessionTTL, 5 * time.Second, time.Second},
		{"tick interval", &c.TickInterval, 100 * time.Millisecond, time.Millisecond},
		{"heartbeat interval", &c.HeartbeatInterval, time.Second, 10 * time.Millisecond},
		{"status publish interval", &c.StatusPublishInterval, time.Second, 10 * time.Millisecond},
		{"unhealthy after", &c.UnhealthyAfter, 30 * time.Second, 100 * time.Millisecond},
	}
	for _, d := range defaults {
		if *d.d == 0 {
			*d.d = d.def
		}
		if *d.d < d.min {
			return fmt.Errorf("server: %s %v is below the minimum %v", d.name, *d.d, d.min)
		}
	}
	switch {
	case c.PollInterval < 0:
		return fmt.Errorf("server: poll interval %v is negative", c.PollInterval)
	case c.PollPerDispatcher < 0:
		return fmt.Errorf("server: poll per dispatcher %v is negative", c.PollPerDispatcher)
	case c.PollPerDispatcher == 0:
		c.PollPerDispatcher = 1500 * time.Nanosecond
	}
	if c.SessionTTL%time.Second != 0 {
		return fmt.Errorf("server: session ttl %v: etcd leases count whole seconds", c.SessionTTL)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	kinds := defaultDispatchers()
	for name, kind := range c.Dispatchers {
		if err := etcdutil.ValidateID("dispatcher kind", name); err != nil {
			return fmt.Errorf("server: dispatchers: %w", err)
		}
		if kind == nil {
			return fmt.Errorf("server: dispatchers: kind %q has no constructor", name)
		}
		kinds[name] = kind
	}
	c.Dispatchers = kinds
	return nil
}

// dispatcherNames lists the dispatcher kinds this node runs, sorted, for messages.
func (c *Config) dispatcherNames() []string {
	names := make([]string, 0, len(c.Dispatchers))
	for name := range c.Dispatchers {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// checkHostPort rejects what cannot be listened on or, when advertised, dialled by peers.
func checkHostPort(field, addr string, advertised bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("server: %s %q: want HOST:PORT: %w", field, addr, err)
	}
	if port == "" {
		return fmt.Errorf("server: %s %q: missing port", field, addr)
	}
	if advertised && (host == "" || host == "0.0.0.0" || host == "::") {
		return fmt.Errorf("server: %s %q: peers dial this address, so name a reachable host, not a wildcard", field, addr)
	}
	return nil
}

// loadNodeID returns the configured node ID, or the one stored in the data dir, creating and
// storing a new one on first start so a node keeps its identity across restarts.
func loadNodeID(cfg *Config) (string, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return "", fmt.Errorf("server: data dir: %w", err)
	}
	path := filepath.Join(cfg.DataDir, "node-id")
	if cfg.NodeID != "" {
		return cfg.NodeID, os.WriteFile(path, []byte(cfg.NodeID+"\n"), 0o644)
	}
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if !idPattern.MatchString(id) {
			return "", fmt.Errorf("server: %s holds %q, not a valid node id; fix or delete the file", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("server: read node id: %w", err)
	}
	var raw [4]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("server: new node id: %w", err)
	}
	id := "node-" + hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("server: store node id: %w", err)
	}
	return id, nil
}

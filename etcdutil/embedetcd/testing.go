package embedetcd

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// startAttempts covers the small race between picking a free port and etcd binding it.
const startAttempts = 3

// StartForTest starts a fast, quiet member (10 ms ticks, 100 ms election timeout) in a temporary
// dir and registers its Close with t.Cleanup. Cleanups run last-registered first, so clients
// from (*Server).Client and sessions the test registers afterwards are closed before the server.
func StartForTest(t testing.TB) *Server {
	t.Helper()
	var lastErr error
	for range startAttempts {
		s, err := Start(Config{Dir: t.TempDir(), TickMs: 10, ElectionMs: 100, LogLevel: "error"})
		if err == nil {
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("embedetcd: close: %v", err)
				}
			})
			return s
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("embedetcd: start test etcd: %v", lastErr)
	return nil
}

// Client returns a client of s whose Close is registered with t.Cleanup, so it runs before the
// server's Close (registered earlier by StartForTest).
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   s.ClientURLs(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("embedetcd: new client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	// Make sure the client works before the test relies on it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, "/"); err != nil {
		t.Fatalf("embedetcd: client of %v cannot read: %v", s.ClientURLs(), err)
	}
	return cli
}

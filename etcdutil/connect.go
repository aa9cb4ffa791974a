package etcdutil

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// DefaultConnectTimeout is used by Connect when the caller passes no timeout.
const DefaultConnectTimeout = 5 * time.Second

// Connect dials etcd and proves it answers within timeout, so a wrong endpoint fails at start with
// a message naming it rather than later inside the first real request. tlsCfg may be nil.
func Connect(ctx context.Context, endpoints []string, tlsCfg *tls.Config, timeout time.Duration) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("etcdutil: no etcd endpoints given")
	}
	for _, ep := range endpoints {
		if ep == "" {
			return nil, fmt.Errorf("etcdutil: empty etcd endpoint in %v", endpoints)
		}
	}
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: timeout,
		TLS:         tlsCfg,
		Context:     context.WithoutCancel(ctx),
		// The client logs every retry and reconnect at info/warn; tidemark reports what matters itself.
		Logger: quietLogger(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcdutil: cannot reach etcd at %v: %w", endpoints, err)
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// A linearizable read needs a quorum, so success means the cluster can serve us, not just that
	// a TCP port is open.
	if _, err := cli.Get(pctx, rootPrefix, clientv3.WithCountOnly()); err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("etcdutil: cannot reach etcd at %v: %w", endpoints, err)
	}
	return cli, nil
}

// quietLogger is a zap logger that only lets errors through, for the etcd client.
func quietLogger() *zap.Logger {
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(zapcore.ErrorLevel)
	cfg.Sampling = nil
	lg, err := cfg.Build()
	if err != nil {
		return zap.NewNop()
	}
	return lg
}

// decodeJSON unmarshals an etcd value, naming the key when it is malformed.
func decodeJSON(key string, value []byte, into any) error {
	if err := json.Unmarshal(value, into); err != nil {
		return fmt.Errorf("etcdutil: malformed JSON at %s: %w", key, err)
	}
	return nil
}

// encodeJSON marshals a value to store; failures are internal (all stored types are plain data).
func encodeJSON(what string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("etcdutil: encode %s: %w", what, err)
	}
	return string(b), nil
}

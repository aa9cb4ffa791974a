package main

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// parseEndpoints splits a comma-separated etcd URL list and checks each entry, so that a typo is
// reported by name instead of surfacing later as a connection timeout.
func parseEndpoints(flag, list string) ([]string, error) {
	var eps []string
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usagef("--%s: %q is not an etcd URL; write it as http://HOST:PORT", flag, raw)
		}
		if _, err := parseHostPort(flag, u.Host); err != nil {
			return nil, err
		}
		eps = append(eps, raw)
	}
	if len(eps) == 0 {
		return nil, usagef("--%s is empty; give one or more etcd URLs such as %s", flag, defaultEtcd)
	}
	return eps, nil
}

// parseHostPort checks a HOST:PORT listen address and returns its port. The host is required
// because the address is also what peers dial.
func parseHostPort(flag, addr string) (int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, usagef("--%s: %q is not HOST:PORT (for example 127.0.0.1:8300): %v", flag, addr, err)
	}
	if host == "" {
		return 0, usagef("--%s: %q has no host; peers need one to dial, for example 127.0.0.1%s", flag, addr, addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return 0, usagef("--%s: port %q in %q is not a number from 1 to 65535", flag, portStr, addr)
	}
	return port, nil
}

// parseListenAddr checks a HOST:PORT the server listens on. Port 0 is allowed there: the kernel
// picks a free port and the node advertises the one it bound, which is how harnesses that start
// many servers side by side avoid racing other processes for a port they picked in advance.
func parseListenAddr(flag, addr string) error {
	if host, port, err := net.SplitHostPort(addr); err == nil && host != "" && port == "0" {
		return nil
	}
	_, err := parseHostPort(flag, addr)
	return err
}

// newLogger builds the process logger: JSON lines to path, or to stderr when path is empty.
func newLogger(level, path string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, usagef("--log-level: %q is not a level; use debug, info, warn or error", level)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil // a scheduler's rare events are the ones worth keeping
	cfg.EncoderConfig.TimeKey = "time"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	if path != "" {
		cfg.OutputPaths = []string{path}
		cfg.ErrorOutputPaths = []string{path}
	}
	lg, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("cannot open log file %q: %w; check that its directory exists and is writable", path, err)
	}
	return lg, nil
}

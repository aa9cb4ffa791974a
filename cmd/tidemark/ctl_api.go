package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/etcdutil"
)

// apiClient reaches the nodes' HTTP status API: plain HTTP, or HTTPS when ctl is given the
// cluster's CA (--tls-ca), as the nodes serve it when they run with TLS.
type apiClient struct {
	scheme string // "http" or "https"
	http   *http.Client
}

// newAPIClient builds the client from --tls-ca/--tls-cert/--tls-key: none for plain HTTP, the
// CA alone to verify the nodes, and a certificate and key for nodes that require client
// certificates (--status-require-client-cert), such as the ctl.pem of `tidemark certs`.
func newAPIClient(files etcdutil.TLSFiles, timeout time.Duration) (apiClient, error) {
	cfg, err := etcdutil.ClientTLS(files)
	if err != nil {
		return apiClient{}, usagef("--tls-ca/--tls-cert/--tls-key: %w", err)
	}
	if cfg == nil {
		return apiClient{scheme: "http", http: &http.Client{Timeout: timeout}}, nil
	}
	return apiClient{scheme: "https", http: &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: cfg}}}, nil
}

// api is env's client; an env made without one (drain on shutdown) talks plain HTTP.
func (e *ctlEnv) api() apiClient {
	if e.apiClient.http == nil {
		return apiClient{scheme: "http", http: http.DefaultClient}
	}
	return e.apiClient
}

// maintainerAPI finds the HTTP status API of cf's current maintainer through etcd: the
// election names the node, the registry its status address.
func (e *ctlEnv) maintainerAPI(ctx context.Context, cf string) (string, error) {
	ld, err := etcdutil.GetLeader(ctx, e.cli, e.keys, cf)
	if err != nil {
		return "", err
	}
	if ld.Node == "" {
		return "", transient(fmt.Errorf("changefeed %s has no maintainer right now; retry shortly (see `tidemark ctl status`)", cf))
	}
	nodes, err := etcdutil.ListNodes(ctx, e.cli, e.keys)
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		if n.ID == ld.Node {
			if n.StatusAddr == "" {
				return "", fmt.Errorf("maintainer %s of %s serves no HTTP status API; start it with --status-addr", ld.Node, cf)
			}
			return e.api().scheme + "://" + n.StatusAddr, nil
		}
	}
	return "", transient(fmt.Errorf("maintainer %s of %s is not in the registry (dying?); retry shortly", ld.Node, cf))
}

// transientError is a failure that a maintainer change explains and that passes by itself:
// no maintainer elected yet, one that is taking over (503) or one that died (unreachable).
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

func transient(err error) error { return transientError{err} }

// maintainerGet fetches path from cf's current maintainer into v. Across a failover (no
// maintainer yet, the new one still taking over, the old one dead) it asks again, finding
// the maintainer anew each time, until the command's --timeout: a user or script reading
// spans during a failover gets the answer a moment later instead of an error to retry by hand.
func (e *ctlEnv) maintainerGet(ctx context.Context, cf, path string, v any) error {
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		base, err := e.maintainerAPI(ctx, cf)
		if err == nil {
			err = e.getAPI(ctx, base, path, v)
		}
		var te transientError
		if err == nil {
			return nil
		}
		if !errors.As(err, &te) && !e.maintainerMoved(ctx, cf, base) {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return err
		}
	}
}

// maintainerMoved reports whether cf's maintainer is no longer the node at base: a node that
// stepped down while ctl asked it answers that it does not run the changefeed (any more).
func (e *ctlEnv) maintainerMoved(ctx context.Context, cf, base string) bool {
	now, err := e.maintainerAPI(ctx, cf)
	return now != base || err != nil && errors.As(err, new(transientError))
}

// getAPI fetches path from base into v. A JSON error body becomes the error message.
func (e *ctlEnv) getAPI(ctx context.Context, base, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	resp, err := e.api().http.Do(req)
	if err != nil {
		hint := ""
		if strings.HasPrefix(base, "https:") && strings.Contains(err.Error(), "certificate") {
			hint = "; --tls-ca must be the CA of the cluster, and a node that requires client certificates also needs --tls-cert/--tls-key"
		}
		err = fmt.Errorf("cannot reach the maintainer's status API at %s: %w%s", base, err, hint)
		if hint == "" && ctx.Err() == nil {
			err = transient(err) // most likely a maintainer that just died
		}
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("reading %s%s: %w", base, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var ae api.Error
		if json.Unmarshal(body, &ae) == nil && ae.Error != "" {
			err := fmt.Errorf("the maintainer's API answered %d: %s", resp.StatusCode, ae.Error)
			// 503: elected and taking over, or restoring; 404 naming another maintainer (or
			// none): this node stepped down since ctl read the election.
			if resp.StatusCode == http.StatusServiceUnavailable ||
				resp.StatusCode == http.StatusNotFound && (ae.Maintainer != "" || strings.Contains(ae.Error, "retry shortly")) {
				err = transient(err)
			}
			return err
		}
		if resp.StatusCode == http.StatusBadRequest && strings.Contains(string(body), "HTTPS server") {
			return fmt.Errorf("the maintainer's status API at %s serves HTTPS (the cluster runs with TLS); pass --tls-ca, and --tls-cert/--tls-key if it requires client certificates", base)
		}
		return fmt.Errorf("the maintainer's API answered %d for %s", resp.StatusCode, path)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("malformed answer from %s%s: %w", base, path, err)
	}
	return nil
}

// ctlTLSArgs are the ctl flags for the HTTPS status API of a cluster whose certificates
// `tidemark certs` wrote to dir, with client certificate client.
func ctlTLSArgs(dir, client string) string {
	return fmt.Sprintf("--tls-ca %s --tls-cert %s --tls-key %s", caPath(dir), certPath(dir, client), keyPath(dir, client))
}

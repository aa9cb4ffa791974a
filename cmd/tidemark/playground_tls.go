package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/pki"
)

// playgroundCertValidity is long enough for any playground session and short enough that a
// key left in a kept --dir does not stay good for long.
const playgroundCertValidity = 30 * 24 * time.Hour

// playgroundTLS is where the playground's certificates live when it runs with --tls; the zero
// value means plaintext.
type playgroundTLS struct{ dir string }

func (p playgroundTLS) on() bool { return p.dir != "" }

// makePlaygroundCerts writes a CA, one certificate per node and one for ctl into dir/certs,
// with the same code as `tidemark certs`. It overwrites: a kept --dir gets fresh certificates on
// every start, so an expired or half-written set from an earlier run never stops it.
func makePlaygroundCerts(dir string, nodes int) (playgroundTLS, error) {
	p := playgroundTLS{dir: filepath.Join(dir, "certs")}
	spec := pki.ClusterSpec{Dir: p.dir, Cluster: playgroundCluster, Clients: []string{"ctl"},
		Hosts: []string{"127.0.0.1", "localhost"}, Valid: playgroundCertValidity, Force: true}
	for i := range nodes {
		spec.Nodes = append(spec.Nodes, playgroundNodeID(i))
	}
	if _, err := pki.WriteCluster(spec); err != nil {
		return p, fmt.Errorf("cannot make the playground's certificates: %w", err)
	}
	return p, nil
}

// serverArgs are the TLS flags of node id.
func (p playgroundTLS) serverArgs(id string) []string {
	if !p.on() {
		return nil
	}
	return []string{"--tls-ca", caPath(p.dir), "--tls-cert", certPath(p.dir, id), "--tls-key", keyPath(p.dir, id)}
}

// ctlArgs are the flags ctl needs for the nodes' HTTPS status API, with a leading space; ""
// without TLS.
func (p playgroundTLS) ctlArgs() string {
	if !p.on() {
		return ""
	}
	return " " + ctlTLSArgs(p.dir, "ctl")
}

// apiClient reaches the nodes' status APIs as ctl does, with the ctl certificate under TLS.
func (p playgroundTLS) apiClient() (apiClient, error) {
	var files etcdutil.TLSFiles
	if p.on() {
		files = etcdutil.TLSFiles{CA: caPath(p.dir), Cert: certPath(p.dir, "ctl"), Key: keyPath(p.dir, "ctl")}
	}
	return newAPIClient(files, 900*time.Millisecond)
}

// scheme is the status API's URL scheme.
func (p playgroundTLS) scheme() string {
	if p.on() {
		return "https"
	}
	return "http"
}

// playgroundNodeID is the ID of the playground's node i (from 0).
func playgroundNodeID(i int) string { return fmt.Sprintf("node-%d", i+1) }

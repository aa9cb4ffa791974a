package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Scheme is the URI scheme of tidemark identities in certificates.
const Scheme = "tidemark"

// Holder kinds, the first path segment of an identity URI.
const (
	KindNode   = "node"
	KindClient = "client"
)

// idPattern is the rule for cluster, node and client IDs, the same one etcdutil.ValidateID
// applies; repeated here so that the transport does not depend on the etcd client.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ErrNoIdentity: the certificate carries no tidemark node identity for the cluster asked about.
var ErrNoIdentity = errors.New("pki: certificate names no tidemark node")

// validID checks one ID; kind names it in the error.
func validID(kind, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("pki: invalid %s id %q: want 1-128 characters of [A-Za-z0-9_.-] starting with a letter or digit", kind, id)
	}
	return nil
}

// IdentityURI is the URI SAN naming holder name of the given kind in cluster.
func IdentityURI(cluster, kind, name string) *url.URL {
	return &url.URL{Scheme: Scheme, Host: cluster, Path: "/" + kind + "/" + name}
}

// identity is one parsed tidemark URI SAN.
type identity struct{ cluster, kind, name string }

// parseIdentity reads a tidemark URI SAN; ok is false for URIs of other schemes, which a
// certificate may carry for other purposes.
func parseIdentity(u *url.URL) (id identity, ok bool, err error) {
	if u.Scheme != Scheme {
		return id, false, nil
	}
	kind, name, found := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	// url.Parse lowercases nothing in the host, so the cluster ID compares exactly.
	if !found || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
		return id, true, fmt.Errorf("pki: malformed identity %q: want %s://CLUSTER/KIND/NAME", u, Scheme)
	}
	if kind != KindNode && kind != KindClient {
		return id, true, fmt.Errorf("pki: identity %q: kind %q is neither %q nor %q", u, kind, KindNode, KindClient)
	}
	if err := validID("cluster", u.Host); err != nil {
		return id, true, fmt.Errorf("pki: identity %q: %w", u, err)
	}
	if err := validID(kind, name); err != nil {
		return id, true, fmt.Errorf("pki: identity %q: %w", u, err)
	}
	return identity{cluster: u.Host, kind: kind, name: name}, true, nil
}

// NodeID returns the node ID that cert names for cluster. The certificate must already be
// verified against the cluster's CA: this only reads it. It fails with ErrNoIdentity (wrapped)
// when the certificate names no node of cluster (a client certificate, another cluster's node, no
// tidemark URI at all), and with a plain error when its tidemark URIs are malformed or name more
// than one node: such a certificate is refused rather than read generously.
func NodeID(cert *x509.Certificate, cluster string) (string, error) {
	if cert == nil {
		return "", fmt.Errorf("%w: no certificate", ErrNoIdentity)
	}
	var node string
	var seen []string
	for _, u := range cert.URIs {
		id, ok, err := parseIdentity(u)
		if !ok {
			continue
		}
		if err != nil {
			return "", err
		}
		seen = append(seen, u.String())
		if id.cluster != cluster || id.kind != KindNode {
			continue
		}
		if node != "" && node != id.name {
			return "", fmt.Errorf("pki: certificate %q names two nodes, %q and %q; issue one certificate per node",
				cert.Subject.CommonName, node, id.name)
		}
		node = id.name
	}
	if node == "" {
		if len(seen) == 0 {
			return "", fmt.Errorf("%w of cluster %q: certificate %q has no %s URI SAN (issue it with `tidemark certs`)",
				ErrNoIdentity, cluster, cert.Subject.CommonName, Scheme+"://"+cluster+"/"+KindNode+"/<id>")
		}
		return "", fmt.Errorf("%w of cluster %q: certificate %q names only %s", ErrNoIdentity, cluster, cert.Subject.CommonName, strings.Join(seen, ", "))
	}
	return node, nil
}

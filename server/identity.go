package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/pki"
)

// unauthenticatedWarning is logged once at start without peer TLS. It says what an operator
// must know: in plaintext the node ID of a message is whatever its sender claims.
const unauthenticatedWarning = "peers are not authenticated: any process that can reach --addr can send requests as any node; " +
	"use --tls-ca/--tls-cert/--tls-key (certificates from `tidemark certs`)"

// ownCertNode returns the node ID that the node's own peer certificate names (pki.NodeID).
func ownCertNode(cfg *tls.Config, cluster string) (string, error) {
	if len(cfg.Certificates) == 0 || len(cfg.Certificates[0].Certificate) == 0 {
		return "", errors.New("server: peer tls has no certificate")
	}
	leaf := cfg.Certificates[0].Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cfg.Certificates[0].Certificate[0]); err != nil {
			return "", fmt.Errorf("server: parse own certificate: %w", err)
		}
	}
	id, err := pki.NodeID(leaf, cluster)
	if err != nil {
		return "", fmt.Errorf("server: --tls-cert: %w", err)
	}
	return id, nil
}

// resolveNodeID settles the node ID and, with peer TLS, binds it to the certificate: peers will
// accept this node only as the node its certificate names, so a node configured as anything
// else could never talk and must not start. Without a --node-id and a stored ID, the
// certificate's ID is taken. Without TLS it only warns that nothing is authenticated.
func resolveNodeID(cfg *Config) (string, error) {
	if cfg.PeerTLS == nil {
		cfg.Logger.Warn(unauthenticatedWarning, zap.String("cluster", cfg.ClusterID))
		return loadNodeID(cfg)
	}
	certID, err := ownCertNode(cfg.PeerTLS, cfg.ClusterID)
	if err != nil {
		return "", err
	}
	mismatch := func(id, source string) error {
		return fmt.Errorf("server: this node is %q (%s) but its --tls-cert names node %q of cluster %q; "+
			"use the certificate issued for %q, or issue one with `tidemark certs --nodes %s`", id, source, certID, cfg.ClusterID, id, id)
	}
	// Checked before loadNodeID, which stores a given --node-id.
	if cfg.NodeID != "" && cfg.NodeID != certID {
		return "", mismatch(cfg.NodeID, "--node-id")
	}
	if cfg.NodeID == "" {
		_, err := os.Stat(filepath.Join(cfg.DataDir, "node-id"))
		if errors.Is(err, fs.ErrNotExist) {
			cfg.NodeID = certID
		}
	}
	id, err := loadNodeID(cfg)
	if err != nil {
		return "", err
	}
	if id != certID {
		return "", mismatch(id, "from "+filepath.Join(cfg.DataDir, "node-id"))
	}
	return id, nil
}

package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// backdate is how far before now a certificate becomes valid, so that a node whose clock is a
// little behind the issuer's accepts it at once.
const backdate = 5 * time.Minute

// CA is a certificate authority that signs a cluster's certificates.
type CA struct {
	Cert *x509.Certificate
	key  crypto.Signer
	// CertPEM and KeyPEM are the CA as written to ca.pem and ca-key.pem.
	CertPEM, KeyPEM []byte
}

// Pair is one issued certificate and its private key, PEM-encoded.
type Pair struct {
	CertPEM, KeyPEM []byte
}

// NewCA makes a self-signed CA valid for valid from now. It may sign only leaf certificates
// (path length 0): a node's certificate cannot be used to mint others.
func NewCA(name string, valid time.Duration) (*CA, error) {
	if valid <= 0 {
		return nil, fmt.Errorf("pki: validity %v must be above zero", valid)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: ca key: %w", err)
	}
	tmpl, err := template(name, valid)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.MaxPathLenZero = true, true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new ca certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key, CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// LoadCA reads a CA: the one NewCA makes, or an existing one whose key is SEC1 ("EC PRIVATE
// KEY"), PKCS#1 ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"), so a cluster's own CA can sign
// its node certificates.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("pki: ca certificate: no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: ca certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: certificate %q is not a CA", cert.Subject.CommonName)
	}
	key, err := parseSigner(keyPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: ca key does not belong to ca certificate %q", cert.Subject.CommonName)
	}
	return &CA{Cert: cert, key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// parseSigner reads the first PEM private key block.
func parseSigner(keyPEM []byte) (crypto.Signer, error) {
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("pki: ca key: no PEM block")
	}
	var key any
	var err error
	switch kb.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	default:
		return nil, fmt.Errorf("pki: ca key: PEM block %q is not a private key", kb.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("pki: ca key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("pki: ca key: a %T cannot sign", key)
	}
	return signer, nil
}

// IssueNode issues the certificate of node in cluster: its identity URI, the given hosts as IP
// or DNS SANs (what peers dial), and both server and client use, since a node is both.
func (ca *CA) IssueNode(cluster, node string, hosts []string, valid time.Duration) (Pair, error) {
	if len(hosts) == 0 {
		return Pair{}, fmt.Errorf("pki: node %s: no host; name at least the host in its --addr", node)
	}
	return ca.issue(cluster, KindNode, node, hosts, valid,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
}

// IssueClient issues a client-only certificate (for ctl against the HTTP status API). Its
// identity is of kind client, so the transport never takes it for a node.
func (ca *CA) IssueClient(cluster, name string, valid time.Duration) (Pair, error) {
	return ca.issue(cluster, KindClient, name, nil, valid, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
}

func (ca *CA) issue(cluster, kind, name string, hosts []string, valid time.Duration, usage []x509.ExtKeyUsage) (Pair, error) {
	if err := validID("cluster", cluster); err != nil {
		return Pair{}, err
	}
	if err := validID(kind, name); err != nil {
		return Pair{}, err
	}
	if valid <= 0 {
		return Pair{}, fmt.Errorf("pki: validity %v must be above zero", valid)
	}
	tmpl, err := template(name, valid)
	if err != nil {
		return Pair{}, err
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter // a leaf outliving its CA would only fail later, less clearly
	}
	tmpl.URIs = append(tmpl.URIs, IdentityURI(cluster, kind, name))
	tmpl.KeyUsage, tmpl.ExtKeyUsage = x509.KeyUsageDigitalSignature, usage
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		switch ip := net.ParseIP(h); {
		case h == "":
			return Pair{}, fmt.Errorf("pki: %s %s: empty host", kind, name)
		case ip != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, fmt.Errorf("pki: %s %s: key: %w", kind, name, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return Pair{}, fmt.Errorf("pki: %s %s: create certificate: %w", kind, name, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Pair{}, err
	}
	return Pair{CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// template is the common part of every certificate: a random serial, the name, the validity.
func template(name string, valid time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial: %w", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-backdate), NotAfter: now.Add(valid),
	}, nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

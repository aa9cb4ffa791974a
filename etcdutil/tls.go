package etcdutil

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSFiles names the PEM files of one TLS setup. All empty means plaintext.
type TLSFiles struct {
	CA   string `json:"ca,omitempty"`   // CA bundle that signed the other side's certificate
	Cert string `json:"cert,omitempty"` // this side's certificate
	Key  string `json:"key,omitempty"`  // its private key
}

// Enabled reports whether any file is named.
func (f TLSFiles) Enabled() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// ClientTLS builds the configuration of a TLS client (an etcd client): CA verifies the server;
// Cert and Key, both or neither, are the client certificate for mutual TLS. nil when no file
// is named.
func ClientTLS(f TLSFiles) (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	if f.CA == "" {
		return nil, fmt.Errorf("etcdutil: tls: a CA file is needed to verify the server; certificate %q and key %q alone are not enough", f.Cert, f.Key)
	}
	pool, err := loadPool(f.CA)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if f.Cert != "" || f.Key != "" {
		cert, err := loadPair(f)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// MutualTLS builds the configuration of a node that is both server and client of its peers:
// its own certificate both ways, and peers verified against CA both ways. All three files are
// required; nil when none is named.
func MutualTLS(f TLSFiles) (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	if f.CA == "" || f.Cert == "" || f.Key == "" {
		return nil, fmt.Errorf("etcdutil: mutual tls needs a CA, a certificate and a key; got CA %q, certificate %q, key %q", f.CA, f.Cert, f.Key)
	}
	pool, err := loadPool(f.CA)
	if err != nil {
		return nil, err
	}
	cert, err := loadPair(f)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("etcdutil: tls: read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("etcdutil: tls: CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

func loadPair(f TLSFiles) (tls.Certificate, error) {
	if f.Cert == "" || f.Key == "" {
		return tls.Certificate{}, fmt.Errorf("etcdutil: tls: certificate %q and key %q go together; name both", f.Cert, f.Key)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("etcdutil: tls: load certificate %s and key %s: %w", f.Cert, f.Key, err)
	}
	return cert, nil
}

package pki

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// rsaCA is an RSA CA with a PKCS#8 key, as an operator's own CA may be.
func rsaCA(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "corp CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return encodeCert(der), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func TestLoadCA(t *testing.T) {
	own, err := NewCA("own", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("other", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := own.IssueNode("prod", "n1", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rsaCert, rsaKey := rsaCA(t)

	for _, tc := range []struct {
		name      string
		cert, key []byte
		errHas    string // "" = loads and signs
	}{
		{"own", own.CertPEM, own.KeyPEM, ""},
		{"rsa pkcs8", rsaCert, rsaKey, ""},
		{"mismatched key", own.CertPEM, other.KeyPEM, "does not belong"},
		{"leaf as ca", leaf.CertPEM, leaf.KeyPEM, "is not a CA"},
		{"garbage cert", []byte("nope"), own.KeyPEM, "no PEM CERTIFICATE"},
		{"garbage key", own.CertPEM, []byte("nope"), "no PEM block"},
		{"cert as key", own.CertPEM, own.CertPEM, "not a private key"},
		{"broken key", own.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2}}), "ca key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, err := LoadCA(tc.cert, tc.key)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("LoadCA: %v, want an error containing %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, err := ca.IssueNode("prod", "n2", []string{"127.0.0.1"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca.Cert)
			if _, err := parseCert(t, p.CertPEM).Verify(x509.VerifyOptions{Roots: pool}); err != nil {
				t.Fatalf("issued certificate does not verify: %v", err)
			}
		})
	}
}

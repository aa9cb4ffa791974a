package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// TestPprofOnlyWhenEnabled: /debug/pprof/ is served only with EnablePprof.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	for _, enable := range []bool{false, true} {
		cfg := offlineConfig(t, "n1", nil)
		cfg.EnablePprof = enable
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(s.statusMux())
		want := http.StatusNotFound
		if enable {
			want = http.StatusOK
		}
		for path, code := range map[string]int{"/debug/pprof/": want, "/debug/pprof/cmdline": want, "/healthz": http.StatusOK} {
			if got, _ := httpGet(t, hs.URL+path); got != code {
				t.Errorf("EnablePprof=%v: GET %s = %d, want %d", enable, path, got, code)
			}
		}
		hs.Close()
	}
}

// TestStatusAPIServesTLS: with peer TLS the status API serves HTTPS with the node's certificate
// (plain HTTP gets nothing), verifies client certificates against the cluster CA, and with
// StatusRequireClientCert refuses a client without one.
func TestStatusAPIServesTLS(t *testing.T) {
	ca := newTestPKI(t, "tidemark")
	rogue := newTestPKI(t, "rogue")
	pem, err := os.ReadFile(ca.caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := func(cert *tls.Config) *http.Client {
		c := &tls.Config{RootCAs: roots}
		if cert != nil {
			// Shown whatever CAs the server asks for; crypto/tls would otherwise quietly
			// send no certificate that the server's CA did not sign.
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return &cert.Certificates[0], nil
			}
		}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: c}}
	}
	get := func(c *http.Client, url string) (int, error) {
		resp, err := c.Get(url)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	ctl := mutualTLS(t, ca.issue(t, "ctl"))
	stranger := mutualTLS(t, rogue.issue(t, "stranger"))

	for _, require := range []bool{false, true} {
		cfg := offlineConfig(t, "n1", mutualTLS(t, ca.issueNode(t, "itest", "n1")))
		cfg.StatusAddr, cfg.StatusRequireClientCert = "127.0.0.1:0", require
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := s.startStatusAPI(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		base := "https://" + s.statusAddr
		if code, err := get(client(ctl), base+"/healthz"); err != nil || code != http.StatusOK {
			t.Errorf("require=%v, with the ctl certificate: %d %v", require, code, err)
		}
		if code, err := get(client(nil), base+"/healthz"); (err == nil) == require || (err == nil && code != http.StatusOK) {
			t.Errorf("require=%v, without a client certificate: %d %v", require, code, err)
		}
		if code, err := get(client(stranger), base+"/healthz"); err == nil {
			t.Errorf("require=%v: a certificate of another CA was accepted: %d", require, code)
		}
		if code, err := get(http.DefaultClient, "http://"+s.statusAddr+"/healthz"); err == nil && code == http.StatusOK {
			t.Errorf("require=%v: plain HTTP answered 200", require)
		}
		_ = srv.Close()
	}

	cfg := offlineConfig(t, "n1", nil)
	cfg.StatusRequireClientCert = true
	if _, err := New(cfg); err == nil {
		t.Fatal("StatusRequireClientCert without peer TLS accepted")
	}
}

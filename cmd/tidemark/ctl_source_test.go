package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/pki"
)

// changefeed create --dispatcher etcd stores the source and sink and starts at the source's
// revision; bad ranges, prefixes and TLS files are refused with exit 1 and nothing stored.
func TestCtlCreateEtcdChangefeed(t *testing.T) {
	srv := embedetcd.StartForTest(t)
	ep := srv.ClientURLs()[0]
	badCA := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(badCA, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nope.pem")
	goodCA := writeTestCA(t)
	base := []string{"changefeed", "create", "bad", "--dispatcher", "etcd", "--source-etcd", ep}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--source-range", "a..m", "--source-range", "c..z"}, "must not overlap"},
		{[]string{"--source-prefix", "/tidemark/"}, "tidemark's own keys"},
		{[]string{"--source-prefix", "/a/", "--source-ca", badCA}, "holds no PEM certificate"},
		{[]string{"--source-prefix", "/a/", "--sink", "etcd", "--sink-etcd", ep, "--sink-prefix", "/a/b/"}, "replicate itself"},
		{[]string{"--source-prefix", "/a/", "--sink", "kafka"}, "want \"file\" or \"etcd\""},
		{[]string{"--source-range", "a-b"}, "want START..END"},
		// More bad input: ranges that touch, are equal or nest; a prefix of every key, none, or
		// two ways of naming the keys; TLS files that are missing, half a pair, or bad on the
		// sink side.
		{[]string{"--source-range", "/a/../c/", "--source-range", "/b/../b0"}, "must not overlap"},
		{[]string{"--source-range", "/a/../b/", "--source-range", "/a/../b/"}, "must not overlap"},
		{[]string{"--source-range", "/b/../b0", "--source-range", "/a/../c/"}, "must not overlap"},
		{[]string{"--source-range", "/b/../a/"}, "not above start"},
		{[]string{"--source-range", "../a/"}, "empty start key"},
		{[]string{"--source-prefix", "\xff"}, "covers every key"},
		{[]string{}, "needs --source-prefix P or --source-range START..END"},
		{[]string{"--source-prefix", "/a/", "--source-range", "/b/../c/"}, "exactly one of them"},
		{[]string{"--source-prefix", "/a/", "--source-ca", missing}, "no such file"},
		{[]string{"--source-prefix", "/a/", "--source-ca", goodCA, "--source-cert", goodCA}, "certificate and key go together"},
		{[]string{"--source-prefix", "/a/", "--sink", "etcd", "--sink-etcd", ep, "--sink-prefix", "/b/", "--sink-ca", badCA}, "holds no PEM certificate"},
		{[]string{"--source-prefix", "/a/", "--sink", "etcd", "--sink-etcd", ep, "--sink-prefix", "/tidemark/x/"}, "tidemark's own keys"},
		{[]string{"--source-prefix", "/a/", "--sink", "etcd", "--sink-etcd", ep, "--sink-prefix", "/b"}, "should end in /"},
		{[]string{"--source-prefix", "/a/", "--sink", "etcd", "--sink-prefix", "/b/"}, "sink.endpoints: no endpoints"},
	} {
		res := mustRun(t, exitError, ctlArgs(ep, append(append([]string{}, base...), bad.args...)...)...)
		if !strings.Contains(res.stderr, bad.want) {
			t.Errorf("%v: stderr %q, want %q", bad.args, res.stderr, bad.want)
		}
	}
	mustRun(t, exitUsage, ctlArgs(ep, "changefeed", "create", "bad", "--tables", "1", "--source-prefix", "/a/")...)
	cli := srv.Client(t)
	keys := etcdutil.Keys{Cluster: "ctltest"}
	if got, err := etcdutil.ListChangefeeds(context.Background(), cli, keys); err != nil || len(got) != 0 {
		t.Fatalf("refused creates stored %v (%v)", got, err)
	}
	if _, err := cli.Put(context.Background(), "/a/x", "1"); err != nil {
		t.Fatal(err)
	}
	mustRun(t, exitOK, ctlArgs(ep, "changefeed", "create", "m", "--dispatcher", "etcd", "--source-etcd", ep, "--source-prefix", "/a/",
		"--sink", "etcd", "--sink-etcd", ep, "--sink-prefix", "/b/")...)
	info, err := etcdutil.GetChangefeed(context.Background(), cli, keys, "m")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(context.Background(), "/a/x")
	if err != nil {
		t.Fatal(err)
	}
	if info.Dispatcher != "etcd" || info.Source.Prefix != "/a/" || info.Sink.Prefix != "/b/" || len(info.Tables) != 1 ||
		info.StartTs < uint64(resp.Kvs[0].ModRevision) || info.StartTs > uint64(resp.Header.Revision) {
		t.Fatalf("stored %+v (source at revision %d)", info, resp.Header.Revision)
	}
}

// writeTestCA writes a real CA certificate to a file and returns its path.
func writeTestCA(t *testing.T) string {
	t.Helper()
	ca, err := pki.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "good-ca.pem")
	if err := os.WriteFile(p, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

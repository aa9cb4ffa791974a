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
	clientv3 "go.etcd.io/etcd/client/v3"
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
		{[]string{}, "needs --source-prefix P, --source-range START..END or --source-table-prefix P --source-tables N"},
		{[]string{"--source-table-prefix", "/t/", "--source-tables", "100", "--source-table-width", "2"}, "want 3 to 18"},
		{[]string{"--source-table-prefix", "/tidemark/t", "--source-tables", "3"}, "tidemark's own keys"},
		{[]string{"--source-table-prefix", "/t/", "--source-tables", "3", "--source-prefix", "/a/"}, "exactly one of them"},
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
	for _, half := range [][]string{{"--source-table-prefix", "/t/"}, {"--source-tables", "3"}, {"--source-tables", "3", "--source-table-width", "4"}} {
		res := mustRun(t, exitUsage, ctlArgs(ep, append(append([]string{}, base...), half...)...)...)
		if !strings.Contains(res.stderr, "go together") {
			t.Errorf("%v: stderr %q", half, res.stderr)
		}
	}
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
	testCtlNumberedTables(t, ep, cli, keys)
}

// A changefeed of 100,000 numbered source tables is one small value that ctl prints as a range
// and a pattern; the width is written out so a table's keys never depend on the count.
func testCtlNumberedTables(t *testing.T, ep string, cli *clientv3.Client, keys etcdutil.Keys) {
	mustRun(t, exitOK, ctlArgs(ep, "changefeed", "create", "many", "--dispatcher", "etcd", "--source-etcd", ep,
		"--source-table-prefix", "/shop/t", "--source-tables", "100000", "--sink", "file")...)
	resp, err := cli.Get(context.Background(), keys.ChangefeedInfo("many"))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get: %v", err)
	}
	if v := resp.Kvs[0].Value; len(v) > 1<<10 || !strings.Contains(string(v), `"table_keys":{"prefix":"/shop/t","count":100000,"width":6}`) {
		t.Fatalf("stored %d bytes: %s", len(v), v)
	}
	res := mustRun(t, exitOK, ctlArgs(ep, "changefeed", "get", "many")...)
	for _, want := range []string{"100000 (1-100000)", "sink               file", `tables 1-100000, each the keys under "/shop/t" + its ID in 6 digits`} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("changefeed get: no %q in\n%s", want, res.stdout)
		}
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

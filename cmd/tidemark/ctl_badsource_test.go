package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// An etcd changefeed whose source does not answer: every node keeps running, the span shows
// an error naming the source's endpoints in `ctl spans --state error`, and once the source
// answers the same spans replicate and the error clears, with no restart.
func TestEtcdChangefeedUnreachableSource(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three nodes")
	}
	c := startAcceptCluster(t)
	const ep = "http://127.0.0.1:24613"
	// The source cannot be asked for its revision, so the start is given.
	c.ctl(exitOK, "changefeed", "create", "demo", "--dispatcher", "etcd", "--source-etcd", ep, "--source-prefix", "/src/", "--start-ts", "1")
	var out string
	c.waitFor("the span in error naming the source", 30*time.Second, func() bool {
		res := runCLI(t, ctlArgs(c.ep, "spans", "--changefeed", "demo", "--state", "error")...)
		out = res.stdout
		return res.code == exitOK && strings.Contains(out, "127.0.0.1:24613") && strings.Contains(out, "unreachable")
	})
	c.ctl(exitOK, "status") // the cluster still answers

	src, err := embedetcd.Start(embedetcd.Config{Dir: t.TempDir(), ClientURL: ep, PeerURL: "http://127.0.0.1:24614", TickMs: 10, ElectionMs: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	resp, err := src.Client(t).Put(context.Background(), "/src/x", "1")
	if err != nil {
		t.Fatal(err)
	}
	c.waitFor("the checkpoint past the first write, no span in error", 30*time.Second, func() bool {
		cp, err := etcdutil.GetCheckpoint(context.Background(), c.cli, etcdutil.Keys{Cluster: "ctltest"}, "demo")
		if err != nil || int64(cp) < resp.Header.Revision {
			return false
		}
		res := runCLI(t, ctlArgs(c.ep, "--json", "spans", "--changefeed", "demo", "--state", "error")...)
		return res.code == exitOK && strings.Contains(res.stdout, `"matched": 0`)
	})
}

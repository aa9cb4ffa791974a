package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil"
)

// mustParseFinished reads the resign result's finish time back from etcd.
func mustParseFinished(t *testing.T, c *acceptCluster, out resignJSON) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res, err := etcdutil.WaitAdminResult(ctx, c.cli, etcdutil.Keys{Cluster: "ctltest"}, out.Request)
	if err != nil {
		t.Fatal(err)
	}
	return res.FinishedAt
}

// checkEtcdJSON: every value under /tidemark/ is JSON, through the client and, when Debian's
// etcdctl is installed, through `etcdctl get --prefix`.
func checkEtcdJSON(t *testing.T, c *acceptCluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.cli.Get(ctx, "/tidemark/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, kv := range resp.Kvs {
		if !json.Valid(kv.Value) {
			t.Errorf("%s holds no JSON: %q", kv.Key, kv.Value)
		}
		parts := strings.Split(string(kv.Key), "/")
		kinds[parts[3]] = true
	}
	for _, k := range []string{"nodes", "changefeeds", "election", "admin"} {
		if !kinds[k] {
			t.Errorf("no %s keys under /tidemark/ctltest/: %v", k, kinds)
		}
	}
	path, err := exec.LookPath("etcdctl")
	if err != nil {
		t.Log("etcdctl not installed; checked the values through the client only")
		return
	}
	cmd := exec.CommandContext(ctx, path, "--endpoints", c.ep, "get", "--prefix", "/tidemark/")
	cmd.Env = append(cmd.Environ(), "ETCDCTL_API=3")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("etcdctl: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines)%2 != 0 {
		t.Fatalf("etcdctl printed %d lines, want key/value pairs", len(lines))
	}
	for i := 1; i < len(lines); i += 2 {
		if !json.Valid([]byte(lines[i])) {
			t.Errorf("etcdctl shows %s = %q, not JSON", lines[i-1], lines[i])
		}
	}
}

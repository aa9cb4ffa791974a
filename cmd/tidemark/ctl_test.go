package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// ctlArgs prefixes a ctl subcommand with the flags that point it at the test etcd.
func ctlArgs(endpoint string, args ...string) []string {
	return append([]string{"ctl", "--etcd", endpoint, "--cluster", "ctltest"}, args...)
}

// mustRun runs args in-process and fails the test unless the exit code is want.
func mustRun(t *testing.T, want int, args ...string) result {
	t.Helper()
	res := runCLI(t, args...)
	if res.code != want {
		t.Fatalf("%v: exit code %d, want %d\nstdout: %s\nstderr: %s", args, res.code, want, res.stdout, res.stderr)
	}
	return res
}

func TestCtlChangefeedLifecycle(t *testing.T) {
	ep := embedetcd.StartForTest(t).ClientURLs()[0]

	res := mustRun(t, exitOK, ctlArgs(ep, "changefeed", "create", "orders", "--tables", "1-10,20", "--start-ts", "42",
		"--load", "20=900", "--split-threshold", "500", "--merge-threshold", "50", "--split-pieces", "3")...)
	if !strings.Contains(res.stdout, "created changefeed orders with 11 tables from ts 42") {
		t.Errorf("create output: %q", res.stdout)
	}
	res = mustRun(t, exitOK, ctlArgs(ep, "--json", "changefeed", "create", "audit", "--tables", "5", "--redo")...)
	var created cfJSON
	if err := json.Unmarshal([]byte(res.stdout), &created); err != nil {
		t.Fatalf("create --json output %q: %v", res.stdout, err)
	}
	if created.ID != "audit" || !created.Redo || created.Tables != 1 || created.StartTs == 0 || created.State != "normal" {
		t.Errorf("create --json = %+v", created)
	}

	res = mustRun(t, exitError, ctlArgs(ep, "changefeed", "create", "orders", "--tables", "1")...)
	if !strings.Contains(res.stderr, "changefeed orders already exists") {
		t.Errorf("duplicate create stderr: %q", res.stderr)
	}

	res = mustRun(t, exitOK, ctlArgs(ep, "changefeed", "list")...)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.HasPrefix(lines[1], "audit ") || !strings.HasPrefix(lines[2], "orders ") {
		t.Fatalf("list output:\n%s", res.stdout)
	}
	// tabwriter aligns columns: TABLES starts at the same offset on every line.
	col := strings.Index(lines[0], "TABLES")
	if lines[2][col:col+2] != "11" {
		t.Errorf("list columns not aligned:\n%s", res.stdout)
	}

	res = mustRun(t, exitOK, ctlArgs(ep, "--json", "changefeed", "list")...)
	var list []cfJSON
	if err := json.Unmarshal([]byte(res.stdout), &list); err != nil {
		t.Fatalf("list --json output %q: %v", res.stdout, err)
	}
	if len(list) != 2 || list[1].ID != "orders" || list[1].StartTs != 42 || list[1].SplitPieces != 3 ||
		list[1].SplitLoadThreshold != 500 || list[1].MergeLoadThreshold != 50 {
		t.Errorf("list --json = %+v", list)
	}

	res = mustRun(t, exitOK, ctlArgs(ep, "changefeed", "remove", "orders")...)
	if !strings.Contains(res.stdout, "removed changefeed orders") {
		t.Errorf("remove output: %q", res.stdout)
	}
	res = mustRun(t, exitError, ctlArgs(ep, "changefeed", "remove", "orders")...)
	if !strings.Contains(res.stderr, "changefeed orders not found; list them with `tidemark ctl changefeed list`") {
		t.Errorf("second remove stderr: %q", res.stderr)
	}
	res = mustRun(t, exitOK, ctlArgs(ep, "--json", "changefeed", "remove", "audit")...)
	if strings.TrimSpace(res.stdout) != "{\n  \"removed\": \"audit\"\n}" {
		t.Errorf("remove --json output: %q", res.stdout)
	}
	res = mustRun(t, exitOK, ctlArgs(ep, "--json", "changefeed", "list")...)
	if strings.TrimSpace(res.stdout) != "[]" {
		t.Errorf("list after removing all: %q", res.stdout)
	}
}

// fakeNode registers a node in the test etcd under its own session, as a server would.
func fakeNode(t *testing.T, srv *embedetcd.Server, id string) *concurrency.Session {
	t.Helper()
	sess, err := concurrency.NewSession(srv.Client(t), concurrency.WithTTL(5))
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info := etcdutil.NodeInfo{ID: id, Addr: "127.0.0.1:9", StatusAddr: "127.0.0.1:10", PID: 4242,
		Version: "v-test", StartedAt: time.Now()}
	if err := etcdutil.RegisterNode(ctx, sess, etcdutil.Keys{Cluster: "ctltest"}, info); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	return sess
}

func TestCtlNodes(t *testing.T) {
	srv := embedetcd.StartForTest(t)
	ep := srv.ClientURLs()[0]

	res := mustRun(t, exitOK, ctlArgs(ep, "--json", "nodes")...)
	if strings.TrimSpace(res.stdout) != "[]" {
		t.Errorf("nodes --json with no nodes: %q", res.stdout)
	}
	fakeNode(t, srv, "n1")
	res = mustRun(t, exitOK, ctlArgs(ep, "nodes")...)
	if !strings.Contains(res.stdout, "NODE") || !strings.Contains(res.stdout, "n1") || !strings.Contains(res.stdout, "4242") {
		t.Errorf("nodes output:\n%s", res.stdout)
	}
	res = mustRun(t, exitOK, ctlArgs(ep, "--json", "nodes")...)
	var nodes []nodeJSON
	if err := json.Unmarshal([]byte(res.stdout), &nodes); err != nil {
		t.Fatalf("nodes --json %q: %v", res.stdout, err)
	}
	if len(nodes) != 1 || nodes[0].ID != "n1" || nodes[0].Addr != "127.0.0.1:9" || nodes[0].PID != 4242 || !nodes[0].Alive {
		t.Errorf("nodes --json = %+v", nodes)
	}
}

func TestCtlStatus(t *testing.T) {
	srv := embedetcd.StartForTest(t)
	ep := srv.ClientURLs()[0]
	sess := fakeNode(t, srv, "n1")
	mustRun(t, exitOK, ctlArgs(ep, "changefeed", "create", "demo", "--tables", "1-4", "--start-ts", "1000")...)
	mustRun(t, exitOK, ctlArgs(ep, "changefeed", "create", "idle", "--tables", "1-2", "--start-ts", "7")...)

	// Act as demo's maintainer: win the election, publish a status and persist a checkpoint.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys := etcdutil.Keys{Cluster: "ctltest"}
	lead, err := etcdutil.Campaign(ctx, sess, keys, "demo", "n1")
	if err != nil {
		t.Fatalf("campaign: %v", err)
	}
	err = lead.PublishStatus(ctx, etcdutil.ChangefeedStatus{CheckpointTs: 1500, Operators: 2, Bootstrapped: true,
		Spans:     map[string]int{"replicating": 3, "scheduling": 1},
		NodeSpans: map[string]int{"n1": 2, "ghost": 1}})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if _, err := lead.AdvanceCheckpoint(ctx, 2000); err != nil {
		t.Fatalf("advance checkpoint: %v", err)
	}

	res := mustRun(t, exitOK, ctlArgs(ep, "--json", "status")...)
	var st statusJSON
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		t.Fatalf("status --json %q: %v", res.stdout, err)
	}
	if len(st.Nodes) != 2 || st.Nodes[0].ID != "n1" || !st.Nodes[0].Alive || st.Nodes[1].ID != "ghost" || st.Nodes[1].Alive {
		t.Errorf("status nodes = %+v, want n1 alive and ghost (owner without registry entry) not alive", st.Nodes)
	}
	if len(st.Changefeeds) != 2 {
		t.Fatalf("status changefeeds = %+v", st.Changefeeds)
	}
	demo, idle := st.Changefeeds[0], st.Changefeeds[1]
	if demo.ID != "demo" || demo.Maintainer.Node != "n1" || demo.Maintainer.Epoch != lead.Epoch ||
		demo.CheckpointTs != 2000 || demo.Operators != 2 || demo.Spans["replicating"] != 3 || demo.Spans["scheduling"] != 1 ||
		!demo.Bootstrapped {
		t.Errorf("demo status = %+v", demo)
	}
	if idle.ID != "idle" || idle.Maintainer.Node != "" || idle.CheckpointTs != 7 || idle.Spans["absent"] != 2 {
		t.Errorf("idle status = %+v, want no maintainer, start ts as checkpoint, all spans absent", idle)
	}

	res = mustRun(t, exitOK, ctlArgs(ep, "status")...)
	t.Logf("status:\n%s", res.stdout)
	for _, want := range []string{"cluster ctltest: 1 of 2 nodes alive", "MAINTAINER", "REPLICATING", "demo", "n1", "ghost", "idle"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("status output lacks %q:\n%s", want, res.stdout)
		}
	}
}

func TestCtlTimeout(t *testing.T) {
	res := mustRun(t, exitUsage, "ctl", "--timeout", "0s", "nodes")
	if !strings.Contains(res.stderr, "--timeout") {
		t.Errorf("stderr: %q", res.stderr)
	}
}

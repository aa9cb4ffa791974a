package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// TestCreateDispatcherFlag: --dispatcher names the kind stored in the definition (the default
// sim is left unwritten), get and list show it, and a malformed name is a usage error that
// stores nothing.
func TestCreateDispatcherFlag(t *testing.T) {
	srv := embedetcd.StartForTest(t)
	ep := srv.ClientURLs()[0]
	cli := srv.Client(t)
	keys := etcdutil.Keys{Cluster: "ctltest"}
	ctx := context.Background()

	res := mustRun(t, exitOK, ctlArgs(ep, "changefeed", "create", "mine", "--tables", "1-3", "--dispatcher", "counter")...)
	if !strings.Contains(res.stdout, "dispatcher kind counter") {
		t.Errorf("create output: %q", res.stdout)
	}
	info, err := etcdutil.GetChangefeed(ctx, cli, keys, "mine")
	if err != nil || info.Dispatcher != "counter" {
		t.Fatalf("stored definition: %+v, %v", info, err)
	}
	mustRun(t, exitOK, ctlArgs(ep, "changefeed", "create", "plain", "--tables", "1")...)
	if info, err := etcdutil.GetChangefeed(ctx, cli, keys, "plain"); err != nil || info.Dispatcher != "" || info.DispatcherKind() != "sim" {
		t.Fatalf("default kind: %+v, %v", info, err)
	}
	res = mustRun(t, exitOK, ctlArgs(ep, "changefeed", "get", "mine")...)
	if !strings.Contains(res.stdout, "dispatcher") || !strings.Contains(res.stdout, "counter") {
		t.Errorf("get output:\n%s", res.stdout)
	}
	var list []cfJSON
	res = mustRun(t, exitOK, ctlArgs(ep, "--json", "changefeed", "list")...)
	decodeJSON(t, res.stdout, &list)
	if len(list) != 2 || list[0].Dispatcher != "counter" || list[1].Dispatcher != "sim" {
		t.Errorf("list --json: %+v", list)
	}

	for _, bad := range []string{"a/b", "", "-x", strings.Repeat("k", 129)} {
		res = mustRun(t, exitUsage, ctlArgs(ep, "changefeed", "create", "bad", "--tables", "1", "--dispatcher", bad)...)
		if !strings.Contains(res.stderr, "--dispatcher") {
			t.Errorf("--dispatcher %q: stderr %q", bad, res.stderr)
		}
	}
	if _, err := etcdutil.GetChangefeed(ctx, cli, keys, "bad"); err == nil {
		t.Error("a refused create stored the changefeed")
	}
}

func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

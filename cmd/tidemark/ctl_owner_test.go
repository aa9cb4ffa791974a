package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/server"
)

// TestCtlOwner: `ctl owner` names the node and dispatcher `ctl spans` shows for the span holding
// the key, with the maintainer's epoch, in both output forms; a key no span covers and an
// unknown changefeed fail (exit 1) saying so; a malformed key and an ambiguous changefeed are
// usage errors (exit 2).
func TestCtlOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three nodes")
	}
	c := startAcceptCluster(t)
	c.ctl(exitOK, "changefeed", "create", "demo", "--tables", "1-6", "--redo")
	st := c.settled(12)
	cf := demoStatus(t, st)
	// The balancer may still move table 4 after the cluster first settles, so each answer is
	// compared with a span listing read right before it, until both describe one moment; an
	// owner lookup that names the wrong node or dispatcher never agrees.
	redoOwner := func() api.SpanInfo {
		sj := c.spans("--table", "4", "--mode", "redo")
		if len(sj.Spans) != 1 {
			t.Fatalf("spans of table 4: %+v", sj)
		}
		return sj.Spans[0]
	}
	var ans server.OwnerResponse
	var want api.SpanInfo
	c.waitFor("owner --json agrees with the span listing", 15*time.Second, func() bool {
		want = redoOwner()
		c.ctlJSON(&ans, "owner", "t4:0102", "--changefeed", "demo")
		for _, s := range ans.Spans {
			if s.Mode == "redo" {
				return s.Node == want.Node && s.Dispatcher == want.Dispatcher && s.Span == "4"
			}
		}
		return false
	})
	if len(ans.Spans) != 2 || ans.Changefeed != "demo" || ans.Epoch != cf.Maintainer.Epoch || ans.Maintainer != cf.Maintainer.Node ||
		ans.Table == nil || *ans.Table != 4 || ans.KeyHex != "7400000000000000040102" {
		t.Fatalf("owner --json: %+v (status: maintainer %+v)", ans, cf.Maintainer)
	}

	var res result
	c.waitFor("the owner table agrees with the span listing", 15*time.Second, func() bool {
		want = redoOwner()
		res = c.ctl(exitOK, "owner", "t4") // the only user changefeed: --changefeed may be left out
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		return len(lines) == 4 && strings.HasPrefix(lines[0], "KEY") && strings.Contains(res.stdout, want.Node) &&
			strings.Contains(res.stdout, want.Dispatcher) && strings.Contains(lines[3], "epoch")
	})

	res = c.ctl(exitError, "owner", "t99")
	if !strings.Contains(res.stderr, "no span of changefeed demo covers key t99: table 99 is not in the changefeed") {
		t.Errorf("uncovered key: %s", res.stderr)
	}
	res = c.ctl(exitError, "owner", "t4", "--changefeed", "nope")
	if !strings.Contains(res.stderr, "changefeed nope not found") {
		t.Errorf("unknown changefeed: %s", res.stderr)
	}
	res = c.ctl(exitUsage, "owner", "/registry/x")
	if !strings.Contains(res.stderr, "want t<ID>") {
		t.Errorf("malformed key: %s", res.stderr)
	}
	c.ctl(exitUsage, "owner")
	c.ctl(exitOK, "changefeed", "create", "other", "--tables", "1")
	res = c.ctl(exitUsage, "owner", "t4")
	if !strings.Contains(res.stderr, "name one with --changefeed") {
		t.Errorf("two changefeeds, no --changefeed: %s", res.stderr)
	}
}

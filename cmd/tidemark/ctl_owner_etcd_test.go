package main

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/server"
)

// TestCtlOwnerSourceKey: for a changefeed of the etcd dispatcher `ctl owner` takes a source
// key, finds the table (source key range) and the span holding it, and names the node,
// dispatcher and epoch that `ctl spans` shows for the span whose source range holds the key;
// without --changefeed it finds the changefeed whose ranges hold the key; a key outside every
// range is "not covered" (exit 1, HTTP 404).
func TestCtlOwnerSourceKey(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three nodes")
	}
	c := startAcceptCluster(t)
	src := &etcdutil.SourceConfig{Endpoints: []string{c.ep}, Prefix: "/src/"}
	c.ctl(exitOK, "changefeed", "create", "demo", "--dispatcher", "etcd", "--source-etcd", c.ep, "--source-prefix", "/src/")
	c.settled(1)
	c.ctl(exitOK, "split", "1", "--pieces", "3")
	st := c.settled(3)
	cf := demoStatus(t, st)

	// The span of the listing whose source range holds key, worked out here from the listed
	// span keys, not by the server's lookup.
	holder := func(sj spansJSON, key string) (api.SpanInfo, etcdutil.KeyRange) {
		t.Helper()
		for _, s := range sj.Spans {
			start, _ := hex.DecodeString(s.StartKey)
			end, _ := hex.DecodeString(s.EndKey)
			r, err := etcdcdc.SourceBounds(src, heartbeatpb.TableSpan{TableId: s.Table, StartKey: start, EndKey: end})
			if err != nil {
				t.Fatal(err)
			}
			if r.Contains(key) {
				return s, r
			}
		}
		t.Fatalf("no listed span holds %q: %+v", key, sj)
		return api.SpanInfo{}, etcdutil.KeyRange{}
	}
	seen := map[string]bool{}
	// One key in each third of the split ('A' < 0x55 <= 'z' < 0xaa <= 0xc3, the first byte of é).
	for _, key := range []string{"/src/A", "/src/z", "/src/é/x"} {
		var ans server.OwnerResponse
		var want api.SpanInfo
		var wantRange etcdutil.KeyRange
		// The balancer may move a span at any time, so the answer is compared with listings read
		// right before and right after it, until both listings agree: then all three describe
		// one moment, and an owner lookup naming the wrong span, node or dispatcher never agrees.
		c.waitFor("owner of "+key+" agrees with the span listing around it", 20*time.Second, func() bool {
			var before api.SpanInfo
			before, wantRange = holder(c.spans(), key)
			c.ctlJSON(&ans, "owner", key, "--changefeed", "demo")
			want, _ = holder(c.spans(), key)
			if before != want || len(ans.Spans) != 1 {
				return false
			}
			s := ans.Spans[0]
			return s.Span == want.Span && s.Node == want.Node && s.Dispatcher == want.Dispatcher && s.Node != ""
		})
		s := ans.Spans[0]
		if ans.Changefeed != "demo" || ans.Key != key || ans.Epoch != cf.Maintainer.Epoch || ans.Maintainer != cf.Maintainer.Node ||
			ans.Table == nil || *ans.Table != 1 || ans.TableRange == nil || *ans.TableRange != etcdutil.PrefixRange("/src/") ||
			s.SourceRange == nil || s.SourceRange.StartHex != hex.EncodeToString([]byte(wantRange.Start)) ||
			s.SourceRange.EndHex != hex.EncodeToString([]byte(wantRange.End)) || !s.SourceRange.Contains([]byte(key)) {
			t.Fatalf("owner of %s: %+v (span %+v); want table 1, source range %+v, epoch %d of %s", key, ans, s, wantRange, cf.Maintainer.Epoch, cf.Maintainer.Node)
		}
		seen[s.Span] = true
	}
	if len(seen) != 3 {
		t.Fatalf("the three keys fell in %d spans, want one in each of the three: %v", len(seen), seen)
	}

	// The table output names the span's source range.
	res := c.ctl(exitOK, "owner", "/src/z")
	if !strings.Contains(res.stdout, "SOURCE RANGE") || !strings.Contains(res.stdout, "(changefeed demo") {
		t.Errorf("owner table: %s", res.stdout)
	}

	// Uncovered keys: exit 1 through ctl, 404 from the maintainer's API.
	res = c.ctl(exitError, "owner", "/elsewhere/x", "--changefeed", "demo")
	if !strings.Contains(res.stderr, `key "/elsewhere/x" is not covered by changefeed demo`) || !strings.Contains(res.stderr, `"/src/"`) {
		t.Errorf("uncovered key: %s", res.stderr)
	}
	code, body := getOwnerAPI(t, cf.Maintainer.StatusAddr, "demo", "/elsewhere/x")
	var e api.Error
	if code != http.StatusNotFound || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "is not covered by changefeed demo") {
		t.Errorf("GET owner of an uncovered key: %d %s", code, body)
	}
	code, body = getOwnerAPI(t, cf.Maintainer.StatusAddr, "demo", "/src/A")
	var ans server.OwnerResponse
	if code != http.StatusOK || json.Unmarshal(body, &ans) != nil || len(ans.Spans) != 1 || ans.Spans[0].SourceRange == nil {
		t.Errorf("GET owner of /src/A: %d %s", code, body)
	}

	// Two more changefeeds: one over two explicit ranges, one simulated. Without --changefeed
	// the key picks its changefeed.
	c.ctl(exitOK, "changefeed", "create", "ranges", "--dispatcher", "etcd", "--source-etcd", c.ep,
		"--source-range", "/k/a../k/m", "--source-range", "/k/m../k/z")
	c.ctl(exitOK, "changefeed", "create", "sim", "--tables", "1")
	c.waitFor("owner of /k/q found in changefeed ranges, table 2", 20*time.Second, func() bool {
		res := runCLI(t, ctlArgs(c.ep, "--json", "owner", "/k/q")...)
		var a server.OwnerResponse
		return res.code == exitOK && json.Unmarshal([]byte(res.stdout), &a) == nil && a.Changefeed == "ranges" &&
			a.Table != nil && *a.Table == 2 && len(a.Spans) == 1 && a.Spans[0].Node != "" &&
			a.TableRange != nil && *a.TableRange == (etcdutil.KeyRange{Start: "/k/m", End: "/k/z"})
	})
	// Retried: the maintainer may answer 503 a moment while it starts the new changefeeds.
	c.waitFor("owner of /src/A found in changefeed demo", 20*time.Second, func() bool {
		res := runCLI(t, ctlArgs(c.ep, "--json", "owner", "/src/A")...)
		var a server.OwnerResponse
		return res.code == exitOK && json.Unmarshal([]byte(res.stdout), &a) == nil && a.Changefeed == "demo" && len(a.Spans) == 1
	})
	c.waitFor("owner of t1 found in changefeed sim", 20*time.Second, func() bool {
		res := runCLI(t, ctlArgs(c.ep, "--json", "owner", "t1")...)
		var a server.OwnerResponse
		return res.code == exitOK && json.Unmarshal([]byte(res.stdout), &a) == nil && a.Changefeed == "sim" && len(a.Spans) == 1
	})
	res = c.ctl(exitError, "owner", "/elsewhere/x")
	if !strings.Contains(res.stderr, `key "/elsewhere/x" is not covered by any changefeed`) {
		t.Errorf("a key no changefeed covers: %s", res.stderr)
	}
	res = c.ctl(exitError, "owner", "/k/z", "--changefeed", "ranges") // the end of the last range is outside it
	if !strings.Contains(res.stderr, "not covered by changefeed ranges") {
		t.Errorf("the end key of a range: %s", res.stderr)
	}
}

// getOwnerAPI asks a node's HTTP API for the owner of key.
func getOwnerAPI(t *testing.T, statusAddr, cf, key string) (int, []byte) {
	t.Helper()
	resp, err := http.Get("http://" + statusAddr + "/api/v1/changefeeds/" + cf + "/owner?key=" + url.QueryEscape(key))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

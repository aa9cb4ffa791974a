package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidemark/tidemark/api"
)

// checkOwner: the owner of a key is the node and dispatcher the span listing shows for the
// span holding it, with the maintainer's epoch; keys no span covers, malformed keys, unknown
// changefeeds and a node that does not maintain answer errors that say so.
func checkOwner(t *testing.T, base, otherBase, maint string, epoch uint64) {
	t.Helper()
	code, body := httpGet(t, base+"/api/v1/changefeeds/cf1/spans?table=5")
	var page api.SpanPage
	if code != 200 || json.Unmarshal(body, &page) != nil || len(page.Spans) != 1 {
		t.Fatalf("spans of table 5: %d %s", code, body)
	}
	want := page.Spans[0]
	for _, key := range []string{"t5", "t5:ffff", "0x7400000000000000050102"} {
		code, body = httpGet(t, base+"/api/v1/changefeeds/cf1/owner?key="+key)
		var ans OwnerResponse
		if code != 200 || json.Unmarshal(body, &ans) != nil {
			t.Fatalf("owner of %s: %d %s", key, code, body)
		}
		if len(ans.Spans) != 1 || ans.Spans[0].Node != want.Node || ans.Spans[0].Dispatcher != want.Dispatcher ||
			ans.Spans[0].Span != "5" || ans.Epoch != epoch || ans.Maintainer != maint || ans.Table == nil || *ans.Table != 5 ||
			!strings.HasPrefix(ans.KeyHex, "740000000000000005") || ans.Key != key {
			t.Errorf("owner of %s: %s; want node %s dispatcher %s epoch %d", key, body, want.Node, want.Dispatcher, epoch)
		}
	}
	for _, c := range []struct {
		url  string
		code int
		want string
	}{
		{base + "/api/v1/changefeeds/cf1/owner?key=t99", 404, "no span of changefeed cf1 covers key t99: table 99 is not in the changefeed"},
		{base + "/api/v1/changefeeds/cf1/owner?key=0x61", 404, "it is not a table key"},
		{base + "/api/v1/changefeeds/cf1/owner?key=t5:zz", 400, "parameter key"},
		{base + "/api/v1/changefeeds/cf1/owner?key=/registry/x", 400, "want t<ID>"},
		{base + "/api/v1/changefeeds/cf1/owner", 400, "parameter key is required"},
		{base + "/api/v1/changefeeds/nope/owner?key=t5", 404, "changefeed nope is not running"},
		{base + "/api/v1/changefeeds/bad%2Fid/owner?key=t5", 400, "invalid changefeed id"},
		{otherBase + "/api/v1/changefeeds/cf1/owner?key=t5", 404, "its maintainer is " + maint},
	} {
		code, body := httpGet(t, c.url)
		var e api.Error
		if code != c.code || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, c.want) {
			t.Errorf("GET %s: %d %s, want %d with %q", c.url, code, body, c.code, c.want)
		}
	}
}

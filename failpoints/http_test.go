package failpoints

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func do(t *testing.T, h http.Handler, method, path, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestHandlerEnableStatusDisable(t *testing.T) {
	h := NewHandler()
	path := Prefix + "/" + TransportDelay
	code, body := do(t, h, http.MethodPut, path, "return(20)")
	if code != http.StatusOK || !strings.Contains(body, `"terms": "return(20)"`) {
		t.Fatalf("PUT: %d %s", code, body)
	}
	code, body = do(t, h, http.MethodGet, Prefix, "")
	var l Listing
	if err := json.Unmarshal([]byte(body), &l); code != http.StatusOK || err != nil {
		t.Fatalf("GET list: %d %v %s", code, err, body)
	}
	if l.CompiledIn {
		t.Error("compiled_in is true in a test build whose markers are not rewritten")
	}
	enabled := 0
	for _, s := range l.Failpoints {
		if s.Name == Probe {
			t.Error("the probe is listed")
		}
		if s.Terms != "" {
			enabled++
			if s.Name != TransportDelay {
				t.Errorf("%s enabled unexpectedly: %q", s.Path, s.Terms)
			}
		}
	}
	if enabled != 1 || len(l.Failpoints) != len(All())-1 {
		t.Errorf("listing: %d enabled of %d, want 1 of %d", enabled, len(l.Failpoints), len(All())-1)
	}
	code, body = do(t, h, http.MethodDelete, Prefix+"/messaging/"+TransportDelay, "")
	if code != http.StatusOK || !strings.Contains(body, `"terms": ""`) {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if code, _ = do(t, h, http.MethodDelete, path, ""); code != http.StatusOK {
		t.Errorf("second DELETE: %d, want 200 (disabling twice is fine)", code)
	}
	// A process that never enabled a failpoint (a restarted node) disables it without an error.
	if code, body = do(t, h, http.MethodDelete, Prefix+"/"+DMAfterJournalUpdate, ""); code != http.StatusOK {
		t.Errorf("DELETE of a never enabled failpoint: %d %s, want 200", code, body)
	}
}

func TestHandlerRejectsBadInput(t *testing.T) {
	h := NewHandler()
	for _, tc := range []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{http.MethodPut, Prefix + "/" + TransportDrop, "return(", http.StatusBadRequest, "malformed expression"},
		{http.MethodPut, Prefix + "/" + TransportDrop, "explode(1)", http.StatusBadRequest, "malformed expression"},
		{http.MethodPut, Prefix + "/" + TransportDrop, "  ", http.StatusBadRequest, "want a failpoint expression"},
		{http.MethodPut, Prefix + "/" + TransportDrop, strings.Repeat("x", maxTermsLen+1), http.StatusBadRequest, "want a failpoint expression"},
		{http.MethodPut, Prefix + "/no-such", "return(true)", http.StatusNotFound, "not a registered failpoint"},
		{http.MethodPut, Prefix, "return(true)", http.StatusMethodNotAllowed, "only GET"},
		{http.MethodPatch, Prefix + "/" + TransportDrop, "", http.StatusMethodNotAllowed, "not allowed"},
	} {
		code, body := do(t, h, tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s %s %q: got %d %s; want %d containing %q", tc.method, tc.path, tc.body, code, body, tc.code, tc.msg)
		}
	}
	if _, body := do(t, h, http.MethodGet, Prefix+"/"+TransportDrop, ""); !strings.Contains(body, `"terms": ""`) {
		t.Errorf("a rejected PUT changed the failpoint: %s", body)
	}
}

package failpoints

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/pingcap/failpoint"
)

// Prefix is where the server mounts Handler.
const Prefix = "/debug/failpoints"

// maxTermsLen bounds a PUT body: a failpoint expression is a short line.
const maxTermsLen = 4096

// Handler serves the failpoint API:
//
//	GET    /debug/failpoints        every registered failpoint, its purpose and current terms
//	GET    /debug/failpoints/NAME   one failpoint
//	PUT    /debug/failpoints/NAME   enable with the body as terms, e.g. `return("hold")`, `sleep(200)`
//	DELETE /debug/failpoints/NAME   disable
//
// NAME is a full path or a unique short name from the registry. Unknown names are 404, a malformed
// expression is 400 with the parser's message, and nothing changes on error.
type Handler struct {
	// probeMu serialises the compiled-in probe, which enables and disables a failpoint of its own.
	probeMu sync.Mutex
}

// NewHandler returns the failpoint API handler.
func NewHandler() *Handler { return &Handler{} }

// State is the JSON form of one failpoint.
type State struct {
	Path    string `json:"path"`
	Pkg     string `json:"pkg"`
	Name    string `json:"name"`
	Purpose string `json:"purpose"`
	Value   string `json:"value,omitempty"`
	// Terms is the enabled expression, "" when disabled.
	Terms string `json:"terms"`
}

// Listing is the JSON answer of GET /debug/failpoints.
type Listing struct {
	// CompiledIn is false in a normal build, where markers are no-ops whatever is enabled.
	CompiledIn bool    `json:"compiled_in"`
	Failpoints []State `json:"failpoints"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.Trim(strings.TrimPrefix(r.URL.Path, Prefix), "/")
	if name == "" {
		if r.Method != http.MethodGet {
			httpError(w, http.StatusMethodNotAllowed, "failpoints: %s %s: only GET lists failpoints", r.Method, Prefix)
			return
		}
		writeJSON(w, http.StatusOK, Listing{CompiledIn: h.compiledIn(), Failpoints: states()})
		return
	}
	fp, ok := Lookup(name)
	if !ok {
		httpError(w, http.StatusNotFound, "failpoints: %q is not a registered failpoint (GET %s lists them)", name, Prefix)
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, stateOf(fp))
	case http.MethodPut, http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, maxTermsLen+1))
		if err != nil {
			httpError(w, http.StatusBadRequest, "failpoints: read body: %v", err)
			return
		}
		terms := strings.TrimSpace(string(body))
		if terms == "" || len(body) > maxTermsLen {
			httpError(w, http.StatusBadRequest, "failpoints: want a failpoint expression of 1 to %d bytes as the body, e.g. return(true)", maxTermsLen)
			return
		}
		if err := failpoint.Enable(fp.Path(), terms); err != nil {
			httpError(w, http.StatusBadRequest, "failpoints: malformed expression %q for %s: %v", terms, fp.Path(), err)
			return
		}
		writeJSON(w, http.StatusOK, stateOf(fp))
	case http.MethodDelete:
		if err := failpoint.Disable(fp.Path()); err != nil && !neverEnabled(err) {
			httpError(w, http.StatusInternalServerError, "failpoints: disable %s: %v", fp.Path(), err)
			return
		}
		writeJSON(w, http.StatusOK, stateOf(fp))
	default:
		httpError(w, http.StatusMethodNotAllowed, "failpoints: method %s not allowed; use GET, PUT or DELETE", r.Method)
	}
}

// neverEnabled reports whether Disable failed only because the failpoint was never enabled in
// this process, which leaves it disabled as asked. pingcap wraps its sentinel errors with
// pingcap/errors, which errors.Is does not see through, so the message is compared too.
func neverEnabled(err error) bool {
	return errors.Is(err, failpoint.ErrNotExist) || strings.Contains(err.Error(), failpoint.ErrNotExist.Error())
}

// compiledIn enables the probe marker for one evaluation and sees whether it fired.
func (h *Handler) compiledIn() bool {
	h.probeMu.Lock()
	defer h.probeMu.Unlock()
	if err := failpoint.Enable(probePath, "return(true)"); err != nil {
		return false
	}
	defer func() { _ = failpoint.Disable(probePath) }()
	return probe()
}

// probePath is the probe marker's full name.
const probePath = Module + "/failpoints/" + Probe

// probe is true only in a binary whose markers were rewritten, while the probe is enabled.
func probe() (fired bool) {
	failpoint.Inject("probe", func() { fired = true })
	return fired
}

func states() []State {
	all := All()
	out := make([]State, 0, len(all))
	for _, f := range all {
		if f.Name == Probe && f.Pkg == "failpoints" {
			continue
		}
		out = append(out, stateOf(f))
	}
	return out
}

func stateOf(f Failpoint) State {
	terms, err := failpoint.Status(f.Path())
	if err != nil {
		terms = ""
	}
	return State{Path: f.Path(), Pkg: f.Pkg, Name: f.Name, Purpose: f.Purpose, Value: f.Value, Terms: terms}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

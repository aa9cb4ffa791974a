package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/maintainer"
)

// queryTimeout bounds how long an HTTP request waits for a maintainer loop to answer.
const queryTimeout = 2 * time.Second

// errNotMaintainer: this node does not maintain the changefeed (now).
var errNotMaintainer = errors.New("server: not the maintainer")

// termHandle is one running maintainer term as the HTTP API sees it. Queries are functions run
// on the maintainer loop's goroutine, the only one that touches the core.
type termHandle struct {
	epoch   uint64
	queries chan func(*maintainer.Maintainer)
	ended   chan struct{} // closed when the term ends: queries get errNotMaintainer at once
}

// terms maps changefeed IDs to the maintainer terms running on this node.
type terms struct {
	mu sync.Mutex
	m  map[string]*termHandle
}

func newTerms() *terms { return &terms{m: map[string]*termHandle{}} }

// begin registers a term; the returned function ends it.
func (t *terms) begin(cf string, epoch uint64) (*termHandle, func()) {
	h := &termHandle{epoch: epoch, queries: make(chan func(*maintainer.Maintainer)), ended: make(chan struct{})}
	t.mu.Lock()
	t.m[cf] = h
	t.mu.Unlock()
	return h, func() {
		t.mu.Lock()
		if t.m[cf] == h {
			delete(t.m, cf)
		}
		t.mu.Unlock()
		close(h.ended)
	}
}

func (t *terms) get(cf string) *termHandle {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[cf]
}

func (t *terms) ids() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.m))
	for id := range t.m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// ask runs fn on the maintainer loop of cf and waits for it, within ctx.
func (t *terms) ask(ctx context.Context, cf string, fn func(*maintainer.Maintainer)) error {
	h := t.get(cf)
	if h == nil {
		return errNotMaintainer
	}
	done := make(chan struct{})
	select {
	case h.queries <- func(m *maintainer.Maintainer) { fn(m); close(done) }:
	case <-h.ended:
		return errNotMaintainer
	case <-ctx.Done():
		return fmt.Errorf("server: maintainer loop of %s did not take the query: %w", cf, ctx.Err())
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("server: maintainer loop of %s did not answer: %w", cf, ctx.Err())
	}
}

// mountAPI adds the /api/v1 listings beside /api/v1/status.
func (s *Server) mountAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/changefeeds", s.handleChangefeeds)
	mux.HandleFunc("GET /api/v1/changefeeds/{id}", s.handleChangefeed)
	mux.HandleFunc("GET /api/v1/changefeeds/{id}/spans", s.handleSpans)
	mux.HandleFunc("GET /api/v1/changefeeds/{id}/operators", s.handleOperators)
	mux.HandleFunc("GET /api/v1/changefeeds/{id}/owner", s.handleOwner)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %s %s; the API serves GET /api/v1/status, "+
			"/api/v1/changefeeds, /api/v1/changefeeds/{id}, /api/v1/changefeeds/{id}/spans, /api/v1/changefeeds/{id}/operators "+
			"and /api/v1/changefeeds/{id}/owner?key=",
			r.Method, r.URL.Path), nil)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string, where *api.Error) {
	e := api.Error{Error: msg}
	if where != nil {
		e.Maintainer, e.MaintainerStatusAddr = where.Maintainer, where.MaintainerStatusAddr
	}
	writeJSON(w, code, e)
}

func (s *Server) handleChangefeeds(w http.ResponseWriter, r *http.Request) {
	out := []api.ChangefeedSummary{}
	for _, wk := range s.workers.list() {
		mgr, mt := wk.views.get()
		cs := api.ChangefeedSummary{ID: wk.id, Manager: mgr}
		if mt != nil && s.terms.get(wk.id) != nil {
			cs.Maintaining, cs.Epoch, cs.Bootstrapped = true, mt.Epoch, mt.Bootstrapped
			cs.Checkpoint, cs.Spans, cs.Operators = mt.Checkpoint, mt.Spans, len(mt.Operators)
		}
		out = append(out, cs)
	}
	for _, id := range s.workers.listStopping() {
		out = append(out, api.ChangefeedSummary{ID: id, Stopping: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, out)
}

// askMaintainer runs fn on cf's maintainer loop, or answers the request with the right error.
func (s *Server) askMaintainer(w http.ResponseWriter, r *http.Request, cf string, fn func(*maintainer.Maintainer)) bool {
	if err := etcdutil.ValidateID("changefeed", cf); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	err := s.terms.ask(ctx, cf, fn)
	switch {
	case err == nil:
		return true
	case errors.Is(err, errNotMaintainer):
		s.notMaintainer(w, r.Context(), cf)
	default:
		writeError(w, http.StatusServiceUnavailable, err.Error()+"; the maintainer is busy, retry", nil)
	}
	return false
}

// notMaintainer answers 404 naming the node that maintains cf, so a client can ask it instead.
// A node the election names itself answers 503: it is taking the term over or leaving it, a
// moment's matter, not a wrong address (CI: ctl, asking during a graceful stop, took a 404 for
// a final answer).
func (s *Server) notMaintainer(w http.ResponseWriter, ctx context.Context, cf string) {
	running := s.workers.get(cf) != nil
	ld, err := etcdutil.GetLeader(ctx, s.cli, s.keys, cf)
	switch {
	case err == nil && ld.Node == s.nodeID && running:
		// Won the election, but the maintainer loop has not taken the term yet (or has just
		// left it).
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("node %s was elected maintainer of changefeed %s and is taking it over; retry shortly",
			s.nodeID, cf), nil)
		return
	case err == nil && ld.Node == s.nodeID:
		// Still named in the election but no longer running it: this node is stopping or the
		// changefeed was just paused or removed; the election follows in a moment.
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("node %s is leaving the maintainer role of changefeed %s; retry shortly",
			s.nodeID, cf), nil)
		return
	case !running:
		writeError(w, http.StatusNotFound, fmt.Sprintf("changefeed %s is not running on node %s (unknown, paused or removed); "+
			"list changefeeds with `tidemark ctl changefeed list`", cf, s.nodeID), nil)
		return
	}
	where := &api.Error{}
	if err == nil && ld.Node != "" {
		nodes, _ := s.nodes.Get()
		where.Maintainer, where.MaintainerStatusAddr = ld.Node, nodes[ld.Node].StatusAddr
	}
	msg := fmt.Sprintf("node %s does not maintain changefeed %s", s.nodeID, cf)
	if where.Maintainer != "" {
		msg += fmt.Sprintf("; its maintainer is %s, ask %s://%s", where.Maintainer, s.statusScheme(), where.MaintainerStatusAddr)
	} else {
		msg += "; no node maintains it right now, retry shortly"
	}
	writeError(w, http.StatusNotFound, msg, where)
}

// cfDetail is /api/v1/changefeeds/{id}.
type cfDetail struct {
	maintainer.Status
	Drained []string `json:"drained_nodes"`
}

func (s *Server) handleChangefeed(w http.ResponseWriter, r *http.Request) {
	var d cfDetail
	if s.askMaintainer(w, r, r.PathValue("id"), func(m *maintainer.Maintainer) {
		d = cfDetail{Status: m.Status(), Drained: m.Drained()}
	}) {
		writeJSON(w, http.StatusOK, d)
	}
}

func (s *Server) handleSpans(w http.ResponseWriter, r *http.Request) {
	q, err := parseSpanQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	var page api.SpanPage
	var restored bool
	cf := r.PathValue("id")
	if s.askMaintainer(w, r, cf, func(m *maintainer.Maintainer) { page, err = m.Spans(q); restored = m.Bootstrapped() }) {
		if !restored {
			// A maintainer that is still restoring knows only part of the schedule (none of it
			// at first): an empty or partial listing would read as spans that do not exist.
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the maintainer of %s is still restoring the schedule; retry shortly", cf), nil)
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error(), nil)
			return
		}
		writeSpanPage(w, page)
	}
}

// writeSpanPage writes a page of spans one span at a time through a small buffer, so a large
// page is never one more encoded copy in memory (it decodes as api.SpanPage does).
func writeSpanPage(w http.ResponseWriter, page api.SpanPage) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	_, _ = bw.WriteString(`{"spans": [`)
	for i := range page.Spans {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		_ = bw.WriteByte('\n')
		_ = enc.Encode(page.Spans[i])
	}
	fmt.Fprintf(bw, "],\n\"matched\": %d", page.Matched)
	if page.Next != 0 {
		fmt.Fprintf(bw, ",\n\"next_cursor\": %d", page.Next)
	}
	_, _ = bw.WriteString("}\n")
	_ = bw.Flush()
}

// maxPage bounds one page of spans, so one request cannot hold the maintainer loop for long.
const maxPage = 10000

// parseSpanQuery reads node, state, mode, table, cursor and limit; errors name the parameter.
func parseSpanQuery(r *http.Request) (maintainer.SpanQuery, error) {
	v := r.URL.Query()
	q := maintainer.SpanQuery{Node: v.Get("node"), State: v.Get("state"), Mode: v.Get("mode"), Table: -1, Limit: 1000}
	ints := []struct {
		name string
		dst  *int64
	}{{"table", &q.Table}}
	for _, p := range ints {
		if s := v.Get(p.name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				return q, fmt.Errorf("parameter %s=%q: want a whole number >= 0", p.name, s)
			}
			*p.dst = n
		}
	}
	for _, p := range []struct {
		name string
		dst  *int
		max  int
	}{{"cursor", &q.Cursor, 1 << 31}, {"limit", &q.Limit, maxPage}} {
		if s := v.Get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > p.max {
				return q, fmt.Errorf("parameter %s=%q: want a whole number from 0 to %d", p.name, s, p.max)
			}
			*p.dst = n
		}
	}
	if err := maintainer.ValidateSpanQuery(q); err != nil {
		return q, err
	}
	return q, nil
}

func (s *Server) handleOperators(w http.ResponseWriter, r *http.Request) {
	kind := r.URL.Query().Get("kind")
	var ops []api.OperatorInfo
	var restored bool
	cf := r.PathValue("id")
	if s.askMaintainer(w, r, cf, func(m *maintainer.Maintainer) { ops, restored = m.Operators(), m.Bootstrapped() }) {
		if !restored { // the half-done operators come back with the bootstrap answers
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the maintainer of %s is still restoring the schedule; retry shortly", cf), nil)
			return
		}
		out := []api.OperatorInfo{}
		for _, op := range ops {
			if kind == "" || strings.EqualFold(op.Kind, kind) || strings.EqualFold(op.Kind, "Op"+kind) {
				out = append(out, op)
			}
		}
		writeJSON(w, http.StatusOK, out)
	}
}

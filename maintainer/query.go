package maintainer

import (
	"encoding/hex"
	"fmt"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/span"
)

// SpanQuery selects spans for the status API. Empty fields do not filter.
type SpanQuery struct {
	Node  string
	State string // absent | scheduling | replicating | error (replicating, its dispatcher erroring)
	Mode  string // default | redo
	Table int64  // -1: every table
	// Cursor is where the page starts: the Next of the previous page, 0 for the first.
	Cursor int
	Limit  int // at most this many; <= 0 means 1000
}

// ValidateSpanQuery checks the filters; the error names the bad one.
func ValidateSpanQuery(q SpanQuery) error {
	switch q.State {
	case "", "absent", "scheduling", "replicating", "error":
	default:
		return fmt.Errorf("%w: state %q: want absent, scheduling, replicating or error", ErrInvalid, q.State)
	}
	switch q.Mode {
	case "", "default", "redo":
	default:
		return fmt.Errorf("%w: mode %q: want default or redo", ErrInvalid, q.Mode)
	}
	if q.Cursor < 0 {
		return fmt.Errorf("%w: cursor %d is negative", ErrInvalid, q.Cursor)
	}
	return nil
}

// Spans answers one page of a span listing. The cost is one pass over the candidate spans (a
// node's or a table's set when those filters are given), so a page of a million-span changefeed
// stays cheap enough to serve from the maintainer's loop.
func (m *Maintainer) Spans(q SpanQuery) (api.SpanPage, error) {
	if err := ValidateSpanQuery(q); err != nil {
		return api.SpanPage{}, err
	}
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	var cands []spanID
	switch {
	case q.Node != "":
		cands = m.db.onNode(q.Node)
	case q.Table >= 0:
		cands = m.db.byTable.get(q.Table)
	}
	match := func(sid spanID) bool {
		r := m.db.get(sid)
		return !r.retired() && (q.State == "" || r.life.String() == q.State ||
			(q.State == "error" && m.errs.of(m.db, sid) != "")) &&
			(q.Mode == "" || modeName(r.mode) == q.Mode) &&
			(q.Table < 0 || r.table == q.Table) &&
			(q.Node == "" || m.db.nodeOf(sid) == q.Node)
	}
	page := api.SpanPage{Spans: []api.SpanInfo{}}
	visit := func(sid spanID) {
		if !match(sid) {
			return
		}
		page.Matched++
		if int(sid) < q.Cursor {
			return
		}
		if len(page.Spans) < q.Limit {
			page.Spans = append(page.Spans, spanInfo(m.db, &m.errs, sid))
		} else if page.Next == 0 {
			page.Next = int(sid)
		}
	}
	if cands != nil || q.Node != "" || q.Table >= 0 {
		for _, sid := range cands {
			visit(sid)
		}
	} else {
		for i := range m.db.recs {
			visit(spanID(i))
		}
	}
	return page, nil
}

func spanInfo(db *spanDB, errs *spanErrors, sid spanID) api.SpanInfo {
	r, s, node := db.get(sid), db.spanOf(sid), db.nodeOf(sid)
	info := api.SpanInfo{
		Span: span.FormatName(s), Table: r.table,
		StartKey: hex.EncodeToString(s.StartKey), EndKey: hex.EncodeToString(s.EndKey),
		Mode: modeName(r.mode), State: r.life.String(), Node: node, Checkpoint: db.checkpoint(sid),
	}
	if node != "" {
		info.Dispatcher = fmt.Sprintf("%d.%d", r.dispatcher.Hi, r.dispatcher.Lo)
	}
	if r.op != noOp {
		info.Operator = fmt.Sprintf("%d.%d", r.op.Epoch, r.op.Seq)
	}
	if info.Error = errs.of(db, sid); info.Error != "" {
		info.State = "error"
	}
	return info
}

// NodeSpanStates counts the spans on each node by state (scheduling, replicating); absent spans
// are on no node. For the metrics endpoint: one pass over the nodes' span sets.
func (m *Maintainer) NodeSpanStates() map[string]map[string]int {
	out := make(map[string]map[string]int, len(m.db.byNode))
	for node, ids := range m.db.byNode {
		c := map[string]int{}
		for _, sid := range ids {
			c[m.db.get(sid).life.String()]++
		}
		out[node] = c
	}
	return out
}

// Operators lists the in-flight operators by ID, ages as of the latest input's time.
func (m *Maintainer) Operators() []api.OperatorInfo {
	list := m.ctl.List(m.now)
	out := make([]api.OperatorInfo, 0, len(list))
	for _, info := range list {
		oi := api.OperatorInfo{ID: fmt.Sprintf("%d.%d", info.ID.Epoch, info.ID.Seq), Kind: info.Kind.String(),
			Phase: info.Phase, Nodes: info.Nodes, AgeSeconds: info.Age.Seconds()}
		for _, r := range info.Spans {
			oi.Spans = append(oi.Spans, span.FormatName(r.Span.Span()))
			oi.Mode = modeName(r.Mode)
		}
		out = append(out, oi)
	}
	return out
}

// OwnerAnswer is who owns a key now, as the maintainer of one term sees it.
type OwnerAnswer struct {
	// Epoch is the maintainer's term: an owner named here acts on requests of this epoch.
	Epoch uint64 `json:"epoch"`
	// Bootstrapped is false while a new maintainer restores the schedule: Spans may then miss
	// spans that nodes have not reported yet, so the answer is not to be trusted.
	Bootstrapped bool `json:"bootstrapped"`
	// Spans are the live spans holding the key, one per mode (none when no span covers it).
	Spans []api.SpanInfo `json:"spans"`
}

// Owner answers who owns key now: the live span of each mode whose key range holds it, as
// listed by Spans (node, dispatcher, state, checkpoint), in span-DB order. A key no span covers
// (outside every table of the changefeed, or not a table key) gives no spans. The cost is one
// pass over the spans of the key's table.
func (m *Maintainer) Owner(key []byte) OwnerAnswer {
	out := OwnerAnswer{Epoch: m.cfg.Epoch, Bootstrapped: m.bootstrapped, Spans: []api.SpanInfo{}}
	table, ok := span.TableOf(key)
	if !ok {
		return out
	}
	for _, sid := range m.db.byTable.get(table) {
		if r := m.db.get(sid); !r.retired() && span.ContainsKey(m.db.spanOf(sid), key) {
			out.Spans = append(out.Spans, spanInfo(m.db, &m.errs, sid))
		}
	}
	return out
}

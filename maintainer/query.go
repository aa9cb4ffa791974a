package maintainer

import (
	"encoding/hex"
	"fmt"
	"sort"

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

// SpanInfo is one span in a listing.
type SpanInfo struct {
	Span       string `json:"span"`
	Table      int64  `json:"table"`
	StartKey   string `json:"start_key"`
	EndKey     string `json:"end_key"`
	Mode       string `json:"mode"`
	State      string `json:"state"`
	Node       string `json:"node,omitempty"`
	Dispatcher string `json:"dispatcher,omitempty"`
	Checkpoint uint64 `json:"checkpoint_ts"`
	Operator   string `json:"operator,omitempty"`
	// Error: why the span's dispatcher cannot make progress (State is then "error").
	Error string `json:"error,omitempty"`
}

// SpanPage is one page of a listing. Spans are in span-DB order, which is stable, so a cursor
// stays valid while the schedule changes. Next is 0 on the last page.
type SpanPage struct {
	Spans   []SpanInfo `json:"spans"`
	Matched int        `json:"matched"`
	Next    int        `json:"next_cursor,omitempty"`
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
func (m *Maintainer) Spans(q SpanQuery) (SpanPage, error) {
	if err := ValidateSpanQuery(q); err != nil {
		return SpanPage{}, err
	}
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	var cands []spanID
	switch {
	case q.Node != "":
		for sid := range m.db.byNode[q.Node] {
			cands = append(cands, sid)
		}
		sort.Slice(cands, func(i, j int) bool { return cands[i] < cands[j] })
	case q.Table >= 0:
		cands = m.db.byTable[q.Table]
	}
	match := func(sid spanID) bool {
		r := m.db.get(sid)
		return !r.retired() && (q.State == "" || r.life.String() == q.State ||
			(q.State == "error" && m.errs.of(m.db, sid) != "")) &&
			(q.Mode == "" || modeName(r.mode) == q.Mode) &&
			(q.Table < 0 || r.span.TableId == q.Table) &&
			(q.Node == "" || r.node == q.Node)
	}
	page := SpanPage{Spans: []SpanInfo{}}
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

func spanInfo(db *spanDB, errs *spanErrors, sid spanID) SpanInfo {
	r := db.get(sid)
	info := SpanInfo{
		Span: span.FormatName(r.span), Table: r.span.TableId,
		StartKey: hex.EncodeToString(r.span.StartKey), EndKey: hex.EncodeToString(r.span.EndKey),
		Mode: modeName(r.mode), State: r.life.String(), Node: r.node, Checkpoint: db.checkpoint(sid),
	}
	if r.node != "" {
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
	for node, set := range m.db.byNode {
		c := map[string]int{}
		for sid := range set {
			c[m.db.get(sid).life.String()]++
		}
		out[node] = c
	}
	return out
}

// OperatorInfo is one in-flight operator in a listing, its spans named as span.FormatName does.
type OperatorInfo struct {
	ID         string   `json:"id"`
	Kind       string   `json:"kind"`
	Spans      []string `json:"spans"`
	Mode       string   `json:"mode"`
	Phase      string   `json:"phase"`
	Nodes      []string `json:"nodes"`
	AgeSeconds float64  `json:"age_seconds"`
}

// Operators lists the in-flight operators by ID, ages as of the latest input's time.
func (m *Maintainer) Operators() []OperatorInfo {
	list := m.ctl.List(m.now)
	out := make([]OperatorInfo, 0, len(list))
	for _, info := range list {
		oi := OperatorInfo{ID: fmt.Sprintf("%d.%d", info.ID.Epoch, info.ID.Seq), Kind: info.Kind.String(),
			Phase: info.Phase, Nodes: info.Nodes, AgeSeconds: info.Age.Seconds()}
		for _, r := range info.Spans {
			oi.Spans = append(oi.Spans, span.FormatName(r.Span.Span()))
			oi.Mode = modeName(r.Mode)
		}
		out = append(out, oi)
	}
	return out
}

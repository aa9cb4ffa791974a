package api

import "time"

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
	// Maintainer and MaintainerStatusAddr point to the node to ask instead, when known.
	Maintainer           string `json:"maintainer,omitempty"`
	MaintainerStatusAddr string `json:"maintainer_status_addr,omitempty"`
}

// SpanInfo is one span in a listing (GET /api/v1/changefeeds/{id}/spans).
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

// SpanPage is one page of a span listing. Spans are in span-DB order, which is stable, so a
// cursor stays valid while the schedule changes. Next is 0 on the last page.
type SpanPage struct {
	Spans   []SpanInfo `json:"spans"`
	Matched int        `json:"matched"`
	Next    int        `json:"next_cursor,omitempty"`
}

// OperatorInfo is one in-flight operator in a listing (GET /api/v1/changefeeds/{id}/operators),
// its spans named as span.FormatName does.
type OperatorInfo struct {
	ID         string   `json:"id"`
	Kind       string   `json:"kind"`
	Spans      []string `json:"spans"`
	Mode       string   `json:"mode"`
	Phase      string   `json:"phase"`
	Nodes      []string `json:"nodes"`
	AgeSeconds float64  `json:"age_seconds"`
}

// ChangefeedSummary is one changefeed in GET /api/v1/changefeeds, as the answering node runs it.
type ChangefeedSummary struct {
	ID string `json:"id"`
	// Stopping is set while the node winds the changefeed down (paused or removed): its
	// dispatchers may still be closing. Nothing else is filled in then.
	Stopping     bool           `json:"stopping,omitempty"`
	Maintaining  bool           `json:"maintaining"`
	Epoch        uint64         `json:"epoch,omitempty"`
	Bootstrapped bool           `json:"bootstrapped,omitempty"`
	Checkpoint   uint64         `json:"checkpoint_ts,omitempty"`
	Spans        map[string]int `json:"spans,omitempty"`
	Operators    int            `json:"operators"`
	Drained      []string       `json:"drained_nodes,omitempty"`
	Manager      *ManagerView   `json:"dispatcher_manager,omitempty"`
}

// ManagerView is what the status API shows of a node's dispatcher manager of one changefeed.
type ManagerView struct {
	Epoch       uint64 `json:"epoch"`
	Maintainer  string `json:"maintainer"`
	Dispatchers int    `json:"dispatchers"`
	Journal     int    `json:"journal_entries"`
	// SinkError is the failing sink's cause, "" while it writes; SinkFailingSince when it began.
	SinkError        string     `json:"sink_error,omitempty"`
	SinkFailingSince *time.Time `json:"sink_failing_since,omitempty"`
	SinkErrors       uint64     `json:"sink_errors"`
	Unhealthy        bool       `json:"unhealthy"`
}

package etcdutil

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// Errors callers branch on. Returned errors wrap them with context; test with errors.Is.
var (
	// ErrExists: the key to create is already there.
	ErrExists = errors.New("etcdutil: already exists")
	// ErrNotFound: the key to read, update or remove is absent.
	ErrNotFound = errors.New("etcdutil: not found")
	// ErrNotLeader: the writer's election key is gone or was re-created; it must stop acting.
	ErrNotLeader = errors.New("etcdutil: not the leader")
	// ErrConflict: a compare-and-swap lost against a concurrent writer.
	ErrConflict = errors.New("etcdutil: concurrent update")
)

// Changefeed states.
const (
	StateNormal = "normal"
	StatePaused = "paused"
)

// DefaultSplitPieces is how many pieces a table is cut into when it is split and the changefeed
// does not say.
const DefaultSplitPieces = 2

// NodeInfo is the registry value of one live node, kept under a lease of its session.
type NodeInfo struct {
	ID          string    `json:"id"`
	Addr        string    `json:"addr"`
	StatusAddr  string    `json:"status_addr,omitempty"`
	Version     string    `json:"version,omitempty"`
	PID         int       `json:"pid,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	Incarnation uint64    `json:"incarnation"`
}

// TableInfo is one table of a changefeed. Load is the events per second the simulated
// dispatcher reports for the whole table.
type TableInfo struct {
	ID   int64  `json:"id"`
	Load uint64 `json:"load,omitempty"`
}

// ChangefeedInfo is a changefeed's definition, written by ctl and read by every node.
type ChangefeedInfo struct {
	ID                 string      `json:"id"`
	StartTs            uint64      `json:"start_ts"`
	Tables             []TableInfo `json:"tables"`
	Redo               bool        `json:"redo"`
	SplitLoadThreshold uint64      `json:"split_load_threshold,omitempty"`
	MergeLoadThreshold uint64      `json:"merge_load_threshold,omitempty"`
	SplitPieces        uint32      `json:"split_pieces,omitempty"`
	// MakeBeforeBreak: Moves prepare the destination before stopping the origin
	// (heartbeatpb.ChangefeedConfig.make_before_break).
	MakeBeforeBreak bool      `json:"make_before_break,omitempty"`
	State           string    `json:"state"`
	CreatedAt       time.Time `json:"created_at"`
	// Dispatcher names the kind of dispatcher every node runs for this changefeed's spans
	// (server.Config.Dispatchers); "" is the built-in simulated one, DefaultDispatcher.
	Dispatcher string `json:"dispatcher,omitempty"`
	// Source and Sink: for dispatcher kind "etcd" (EtcdDispatcher), the etcd key ranges that
	// are the tables and where their changes go; nil for every other kind.
	Source *SourceConfig `json:"source,omitempty"`
	Sink   *SinkConfig   `json:"sink,omitempty"`
}

// DefaultDispatcher is the dispatcher kind of a changefeed that names none.
const DefaultDispatcher = "sim"

// DispatcherKind is the kind of dispatcher the changefeed runs: Dispatcher or the default.
func (c *ChangefeedInfo) DispatcherKind() string {
	if c.Dispatcher == "" {
		return DefaultDispatcher
	}
	return c.Dispatcher
}

// Normalize fills defaults: SplitPieces 2 and State "normal".
func (c *ChangefeedInfo) Normalize() {
	if c.SplitPieces == 0 {
		c.SplitPieces = DefaultSplitPieces
	}
	if c.State == "" {
		c.State = StateNormal
	}
}

// Validate reports the first bad field with its name. It does not apply defaults; call Normalize
// first to accept zero SplitPieces and State.
func (c *ChangefeedInfo) Validate() error {
	if err := ValidateID("changefeed", c.ID); err != nil {
		return fmt.Errorf("etcdutil: changefeed field id: %w", err)
	}
	if len(c.Tables) == 0 {
		return fmt.Errorf("etcdutil: changefeed %q field tables: empty, need at least one table", c.ID)
	}
	if len(c.Tables) > MaxTables {
		return fmt.Errorf("etcdutil: changefeed %q field tables: %d tables, more than the %d a changefeed may have",
			c.ID, len(c.Tables), MaxTables)
	}
	seen := make(map[int64]bool, len(c.Tables))
	for i, t := range c.Tables {
		if t.ID < 0 {
			return fmt.Errorf("etcdutil: changefeed %q field tables[%d].id: negative table id %d", c.ID, i, t.ID)
		}
		if seen[t.ID] {
			return fmt.Errorf("etcdutil: changefeed %q field tables[%d].id: duplicate table id %d", c.ID, i, t.ID)
		}
		seen[t.ID] = true
	}
	if c.SplitLoadThreshold > 0 {
		if c.SplitPieces < 2 {
			return fmt.Errorf("etcdutil: changefeed %q field split_pieces: %d, need at least 2 when split_load_threshold is set", c.ID, c.SplitPieces)
		}
		if c.MergeLoadThreshold >= c.SplitLoadThreshold {
			return fmt.Errorf("etcdutil: changefeed %q field merge_load_threshold: %d must be below split_load_threshold %d", c.ID, c.MergeLoadThreshold, c.SplitLoadThreshold)
		}
	}
	if c.Dispatcher != "" {
		if err := ValidateID("dispatcher kind", c.Dispatcher); err != nil {
			return fmt.Errorf("etcdutil: changefeed %q field dispatcher: %w", c.ID, err)
		}
	}
	if err := c.validateSource(); err != nil {
		return fmt.Errorf("etcdutil: changefeed %q %w", c.ID, err)
	}
	switch c.State {
	case StateNormal, StatePaused:
	default:
		return fmt.Errorf("etcdutil: changefeed %q field state: unknown state %q, want %q or %q", c.ID, c.State, StateNormal, StatePaused)
	}
	return nil
}

// Config converts the definition to the wire form a maintainer bootstraps with.
func (c *ChangefeedInfo) Config() *heartbeatpb.ChangefeedConfig {
	tables := make([]heartbeatpb.TableConfig, 0, len(c.Tables))
	for _, t := range c.Tables {
		tables = append(tables, heartbeatpb.TableConfig{TableId: t.ID, Load: t.Load})
	}
	return &heartbeatpb.ChangefeedConfig{
		Id:                 c.ID,
		StartTs:            c.StartTs,
		Tables:             tables,
		Redo:               c.Redo,
		SplitLoadThreshold: c.SplitLoadThreshold,
		MergeLoadThreshold: c.MergeLoadThreshold,
		SplitPieces:        c.SplitPieces,
		MakeBeforeBreak:    c.MakeBeforeBreak,
	}
}

// SameConfig says whether c and o make the same Config, without building either: a running
// maintainer compares the newest info with the one it applied on every change of the info, and
// a Config of a million tables is 16 MB (the server kept one only to compare with, besides the
// maintainer's own). It reads exactly the fields Config does.
func (c *ChangefeedInfo) SameConfig(o *ChangefeedInfo) bool {
	return c.ID == o.ID && c.StartTs == o.StartTs && c.Redo == o.Redo &&
		c.SplitLoadThreshold == o.SplitLoadThreshold && c.MergeLoadThreshold == o.MergeLoadThreshold &&
		c.SplitPieces == o.SplitPieces && c.MakeBeforeBreak == o.MakeBeforeBreak && slices.Equal(c.Tables, o.Tables)
}

// ChangefeedStatus is what the current maintainer publishes about its changefeed. Large listings
// (every span) are served by the maintainer's HTTP status API, not stored here.
type ChangefeedStatus struct {
	Changefeed           string         `json:"changefeed"`
	Maintainer           string         `json:"maintainer"`
	MaintainerStatusAddr string         `json:"maintainer_status_addr,omitempty"`
	Epoch                uint64         `json:"epoch"`
	CheckpointTs         uint64         `json:"checkpoint_ts"`
	Spans                map[string]int `json:"spans,omitempty"` // by state: absent, scheduling, replicating
	Operators            int            `json:"operators"`
	NodeSpans            map[string]int `json:"node_spans,omitempty"`
	Bootstrapped         bool           `json:"bootstrapped"`
	UpdatedAt            time.Time      `json:"updated_at"`
	// SpanErrors: per node, the spans whose dispatcher reports an error and one message.
	SpanErrors map[string]NodeSpanErrors `json:"span_errors,omitempty"`
}

// NodeSpanErrors is one node's erroring spans in a ChangefeedStatus.
type NodeSpanErrors struct {
	Spans int    `json:"spans"`
	Error string `json:"error"`
}

// Leader names the current maintainer of a changefeed; the zero value means nobody leads.
type Leader struct {
	Node  string `json:"node"`
	Epoch uint64 `json:"epoch"`
}

// checkpointValue is the JSON stored at Keys.Checkpoint. Epoch records which maintainer wrote it.
type checkpointValue struct {
	CheckpointTs uint64 `json:"checkpoint_ts"`
	Epoch        uint64 `json:"epoch,omitempty"`
}

// candidateValue is the JSON stored at a candidate's election key.
type candidateValue struct {
	Node string `json:"node"`
}

package server

import (
	"sync"
	"time"

	"github.com/tidemark/tidemark/maintainer"
)

// views hold the latest snapshots the loops took of their cores, so the status API reads them
// without touching a core from another goroutine.
type views struct {
	mu         sync.Mutex
	manager    *managerView
	maintainer *maintainer.Status
}

// managerView is what the status API shows of a dispatcher manager.
type managerView struct {
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

func (v *views) setManager(s managerView) {
	v.mu.Lock()
	v.manager = &s
	v.mu.Unlock()
}

func (v *views) setMaintainer(s *maintainer.Status) {
	v.mu.Lock()
	v.maintainer = s
	v.mu.Unlock()
}

func (v *views) get() (*managerView, *maintainer.Status) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.manager, v.maintainer
}

package server

import (
	"sync"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/maintainer"
)

// views hold the latest snapshots the loops took of their cores, so the status API reads them
// without touching a core from another goroutine.
type views struct {
	mu         sync.Mutex
	manager    *api.ManagerView
	maintainer *maintainer.Status
}

func (v *views) setManager(s api.ManagerView) {
	v.mu.Lock()
	v.manager = &s
	v.mu.Unlock()
}

func (v *views) setMaintainer(s *maintainer.Status) {
	v.mu.Lock()
	v.maintainer = s
	v.mu.Unlock()
}

func (v *views) get() (*api.ManagerView, *maintainer.Status) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.manager, v.maintainer
}

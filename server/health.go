package server

import (
	"context"
	"sort"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/dispatchermanager"
	"github.com/tidemark/tidemark/etcdutil"
)

// healthRefresh is how often the health marker rewrites what etcd should show even without a
// change, so a write that failed (etcd busy) is repaired soon.
const healthRefresh = 5 * time.Second

// nodeHealth gathers the sink health of every dispatcher manager loop on this node and tells
// the marker goroutine when the node turns unhealthy or healthy. The decision "failed for longer
// than UnhealthyAfter" is the managers' (from the clock they are given); this only aggregates.
type nodeHealth struct {
	mu      sync.Mutex
	sick    map[string]dispatchermanager.SinkHealth // changefeed -> health, unhealthy ones only
	changed chan struct{}                           // capacity 1: a pending wake-up
}

func newNodeHealth() *nodeHealth {
	return &nodeHealth{sick: map[string]dispatchermanager.SinkHealth{}, changed: make(chan struct{}, 1)}
}

// set records cf's latest health; the marker wakes when cf joins or leaves the unhealthy set.
func (h *nodeHealth) set(cf string, hl dispatchermanager.SinkHealth) {
	h.mu.Lock()
	_, was := h.sick[cf]
	if hl.Unhealthy {
		h.sick[cf] = hl
	} else {
		delete(h.sick, cf)
	}
	turned := was != hl.Unhealthy
	h.mu.Unlock()
	if turned {
		select {
		case h.changed <- struct{}{}:
		default:
		}
	}
}

// mark returns the node's unhealthy mark, ok false when every sink is healthy.
func (h *nodeHealth) mark(node string) (etcdutil.UnhealthyMark, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.sick) == 0 {
		return etcdutil.UnhealthyMark{}, false
	}
	m := etcdutil.UnhealthyMark{Node: node}
	for cf := range h.sick {
		m.Changefeeds = append(m.Changefeeds, cf)
	}
	sort.Strings(m.Changefeeds)
	first := h.sick[m.Changefeeds[0]]
	m.Since, m.Reason = first.Since.UTC(), first.Cause
	for _, hl := range h.sick {
		if hl.Since.Before(m.Since) {
			m.Since = hl.Since.UTC()
		}
	}
	return m, true
}

// runHealthMarker keeps admin/unhealthy/<node> in step with h for one session: written on the
// session's lease while a sink is unhealthy, deleted once none is.
func (s *Server) runHealthMarker(ctx context.Context, lease clientv3.LeaseID) {
	log := s.log.With(zap.String("role", "health-marker"))
	marked := false
	t := time.NewTicker(healthRefresh)
	defer t.Stop()
	for {
		m, sick := s.health.mark(s.nodeID)
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var err error
		switch {
		case sick:
			if err = etcdutil.MarkUnhealthy(wctx, s.cli, s.keys, lease, m); err == nil && !marked {
				log.Warn("node marked unhealthy: a sink has failed too long; maintainers move its spans away",
					zap.Time("since", m.Since), zap.String("reason", m.Reason), zap.Strings("changefeeds", m.Changefeeds))
			}
		case marked:
			if err = etcdutil.UnmarkUnhealthy(wctx, s.cli, s.keys, s.nodeID); err == nil {
				log.Info("node healthy again: its unhealthy mark is cleared")
			}
		}
		cancel()
		if err != nil {
			log.Warn("cannot update the unhealthy mark; retrying", zap.Error(err))
		} else {
			marked = sick
		}
		select {
		case <-ctx.Done():
			return
		case <-s.health.changed:
		case <-t.C:
		}
	}
}

package server

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/etcdutil"
)

// applyNodes hands a registry read to the transport and to every loop that follows the node
// set, unless a newer read is already there. Reads come by two paths, the session's watch and a
// maintainer term's own read (refreshNodes), and the watch may lag behind: a set at or below the
// shown revision is dropped, so the view never goes back to an older registry. It reports whether
// set was applied.
func (s *Server) applyNodes(set etcdutil.NodeSet) bool {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	if set.Revision <= s.nodesRev {
		return false
	}
	s.nodesRev = set.Revision
	peers := make(map[string]string, len(set.Nodes))
	for id, n := range set.Nodes {
		if id != s.nodeID {
			peers[id] = n.Addr
		}
	}
	s.transport.SetPeers(peers)
	s.nodes.Set(set.Nodes)
	s.metrics.liveNodes.Set(float64(len(set.Nodes)))
	return true
}

// resetNodeView forgets the revision shown, so the next set applies whatever its revision. A
// session starts with it: revisions only grow within one etcd cluster's history, but an etcd
// restored from a snapshot starts lower, and a view kept from before would drop every set.
// The loops of the last session have all stopped by then, so no older term's read races it.
func (s *Server) resetNodeView() {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	s.nodesRev = 0
}

// refreshNodes reads the registry from etcd and applies it. A new maintainer term calls it before
// it reads the node set: the watch's newest set may predate nodes that registered before this
// node was elected (its watch is a re-list behind, or the session loop has not taken it yet), and
// a term that began without them bootstrapped only the nodes it knew and put every span there.
func (s *Server) refreshNodes(ctx context.Context, log *zap.Logger) error {
	set, err := etcdutil.LoadNodes(ctx, s.cli, s.keys)
	if err != nil {
		return fmt.Errorf("server: read the node registry: %w", err)
	}
	if s.applyNodes(set) {
		log.Debug("node set refreshed from etcd", zap.Int("nodes", len(set.Nodes)), zap.Int64("revision", set.Revision))
	}
	return nil
}

// refreshInterval bounds how often an envelope from an unregistered sender makes this node read
// the registry: a peer's claim is only a reason to ask etcd, and a flood of them costs one read
// a second.
const refreshInterval = time.Second

// refreshNodesSoon reads the registry in the background, unless a read is out or one started
// within refreshInterval. A dispatcher manager calls it when it refused an envelope from a
// sender its node set lacks: the sender may have registered after the watch's newest set (a new
// maintainer's bootstrap request would otherwise wait for the lagging watch). The refused
// envelope is not kept; its sender resends it.
func (s *Server) refreshNodesSoon(log *zap.Logger) {
	s.nodesMu.Lock()
	now := time.Now()
	if s.nodesReading || now.Sub(s.nodesReadAt) < refreshInterval {
		s.nodesMu.Unlock()
		return
	}
	s.nodesReading, s.nodesReadAt = true, now
	s.nodesMu.Unlock()
	go func() {
		defer func() {
			s.nodesMu.Lock()
			s.nodesReading = false
			s.nodesMu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.refreshNodes(ctx, log); err != nil {
			log.Warn("could not read the node registry to learn of a node the watch has not shown", zap.Error(err))
		}
	}()
}

package sim

import (
	"fmt"
	"time"
)

// maxNodes bounds how many nodes random faults add.
const maxNodes = 5

// randomFault draws at most one fault per tick from the seed.
func (c faulter) randomFault() {
	if c.rng.Float64() >= 0.04 {
		return
	}
	ids := c.order
	victim := ids[c.rng.Intn(len(ids))]
	switch k := c.rng.Intn(9); k {
	case 0:
		c.CrashMaintainer()
	case 1:
		c.CrashNode(victim, c.cfg.SessionTTL+time.Duration(c.rng.Int63n(int64(3*time.Second))))
	case 2:
		c.CrashNode(victim, 300*time.Millisecond) // restarts before etcd notices: a new incarnation
	case 3:
		c.Partition(victim, time.Second+time.Duration(c.rng.Int63n(int64(3*time.Second))))
	case 4:
		c.ExpireLease(victim)
	case 5:
		c.WakeZombie(time.Second + time.Duration(c.rng.Int63n(int64(2*time.Second))))
	case 6:
		if len(c.order) < maxNodes {
			c.AddNode(fmt.Sprintf("n%d", len(c.order)+1))
		}
	case 7:
		c.CrashMaintainer()
	case 8:
		c.Forge(1 + c.rng.Intn(8))
	}
}

// upNodes counts nodes that are up.
func (c faulter) upNodes() int {
	up := 0
	for _, n := range c.nodes {
		if n.state == nodeUp {
			up++
		}
	}
	return up
}

// CrashMaintainer ends the current maintainer's process role at once (its node stays up); the
// election follows after a short campaign delay.
func (c *Cluster) CrashMaintainer() {
	if c.leader == nil {
		return
	}
	c.counter["crash-maintainer"]++
	c.tracef("fault: crash maintainer %s epoch %d", c.leader.node, c.leader.epoch)
	c.loseLeader(maintDead, time.Duration(c.rng.Int63n(int64(time.Second))))
}

// CrashNode kills a node process; it restarts after downFor as a new incarnation. When downFor
// exceeds the session TTL, etcd drops it from the registry first.
func (c *Cluster) CrashNode(id string, downFor time.Duration) {
	n := c.nodes[id]
	if n == nil || n.state == nodeDown || c.fault.upNodes() < 2 {
		return
	}
	c.counter["crash-node"]++
	c.tracef("fault: crash %s (down for %v)", id, downFor)
	c.fault.stopNode(n, nodeDown)
	n.sink.crash()
	inc := n.incarnation
	c.at(min(downFor, c.cfg.SessionTTL), func() {
		if n.incarnation == inc && downFor >= c.cfg.SessionTTL {
			c.etcd.unregister(id)
		}
	})
	c.at(downFor, func() {
		if n.incarnation == inc {
			c.addNode(id)
		}
	})
}

// stopNode takes a node out of action; a maintainer on it ends (a frozen node's maintainer is
// only paused: it may wake up later as a zombie).
func (c faulter) stopNode(n *node, state nodeState) {
	n.state = state
	n.working = nil
	for _, mt := range c.maints {
		if mt.node != n.id || (mt.state != maintRunning && mt.state != maintZombie) {
			continue
		}
		if mt == c.leader {
			next := maintDead
			if state == nodeFrozen {
				next = maintPaused
			}
			c.loseLeader(next, c.cfg.SessionTTL)
		} else {
			mt.state = maintDead
		}
	}
}

// Partition cuts a node off the network (not from etcd) for d.
func (c *Cluster) Partition(id string, d time.Duration) {
	n := c.nodes[id]
	if n == nil || n.partitioned {
		return
	}
	c.counter["partition"]++
	c.tracef("fault: partition %s for %v", id, d)
	n.partitioned = true
	c.at(d, func() {
		n.partitioned = false
		c.tracef("partition of %s heals", id)
	})
}

// ExpireLease makes a node lose its etcd lease: its lease guard stops it acting at once; after
// the TTL etcd drops it from the registry, its session ends (every dispatcher closed) and a new
// session starts it again, empty, as a new incarnation.
func (c *Cluster) ExpireLease(id string) {
	n := c.nodes[id]
	if n == nil || n.state != nodeUp || c.fault.upNodes() < 2 {
		return
	}
	c.counter["lease-expiry"]++
	c.tracef("fault: lease of %s expires", id)
	c.fault.stopNode(n, nodeFrozen)
	inc := n.incarnation
	c.at(c.cfg.SessionTTL, func() {
		if n.incarnation != inc {
			return
		}
		c.etcd.unregister(id)
		_ = n.dm.Close()
		_ = n.sink.Flush() // the server closes the sink, which flushes it
		n.state = nodeDown
		c.at(200*time.Millisecond+time.Duration(c.rng.Int63n(int64(time.Second))), func() {
			if n.incarnation == inc {
				c.addNode(id)
			}
		})
	})
}

// evict deletes a node's registration. A process that is still there (up, or frozen with its
// lease about to go) learns it from its lease guard's watch and stops at once: every dispatcher
// closed, the sink flushed. Its new session registers it again shortly after, empty, as a new
// incarnation. A crashed process is only dropped from the registry; it restarts as planned.
func (c faulter) evict(id string) {
	n := c.nodes[id]
	if n == nil || !c.registry[id] {
		return
	}
	c.counter["evict"]++
	c.tracef("maintainer evicts silent node %s", id)
	if n.state == nodeDown {
		c.etcd.unregister(id)
		return
	}
	// Stopped before the registry tells the maintainers: the real node's dispatchers may
	// outlive the delete by a watch round trip, but nothing can be placed on another node
	// faster than the maintainer learns of NodeLeft, restores and gets an Add applied.
	c.stopNode(n, nodeDown)
	_ = n.dm.Close()
	_ = n.sink.Flush() // the server closes the sink, which flushes it
	inc := n.incarnation
	c.etcd.unregister(id)
	c.at(200*time.Millisecond+time.Duration(c.rng.Int63n(int64(time.Second))), func() {
		if n.incarnation == inc && n.state == nodeDown {
			c.addNode(id)
		}
	})
}

// WakeZombie lets the latest paused maintainer act again for d, after a newer one took over
// and every node learned the newer epoch: it keeps ticking and sending, and must be fenced.
func (c *Cluster) WakeZombie(d time.Duration) {
	if c.leader == nil || c.now.Sub(c.fault.leaderSince()) < time.Second {
		return
	}
	for i := len(c.maints) - 1; i >= 0; i-- {
		mt := c.maints[i]
		if mt.state != maintPaused || c.nodes[mt.node].state != nodeUp {
			continue
		}
		c.counter["zombie"]++
		c.tracef("fault: maintainer %s epoch %d wakes up as a zombie for %v", mt.node, mt.epoch, d)
		mt.state = maintZombie
		c.at(d, func() {
			if mt.state == maintZombie {
				mt.state = maintDead
			}
		})
		return
	}
}

// AddNode starts a new node.
func (c *Cluster) AddNode(id string) {
	if c.nodes[id] != nil {
		return
	}
	c.counter["add-node"]++
	c.tracef("fault: add node %s", id)
	c.addNode(id)
}

// leaderSince is when the current leader was elected (from the trace-free election record).
func (c faulter) leaderSince() time.Time { return c.leaderAt }

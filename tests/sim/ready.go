package sim

import (
	"errors"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/runner"
)

// The simulator's side of runner: its etcd view as the Store and its network as the Transport,
// so a Ready is performed here by the same code as in the server.

var (
	// errSelfEvicted: the maintainer evicted its own node; its loops stop before sending.
	errSelfEvicted = errors.New("sim: maintainer evicted its own node")
	// errCrashed: the maintainer process crashed between two messages of one Ready.
	errCrashed = errors.New("sim: maintainer crashed mid-Ready")
)

// termStore is the etcd side of one maintainer process. Only a running maintainer writes: a
// zombie's guarded writes fail without it noticing, so it neither persists nor evicts. crashing:
// the process dies after this Ready, so an eviction of its own node does not stop the sends the
// crash lets out.
type termStore struct {
	c        *Cluster
	mt       *maint
	crashing bool
}

// PersistCheckpoint writes off the loop, as the server's runner.CheckpointWriter does: the
// guarded CAS and its answer to the core come one tick later, so the core runs on (ticks,
// deliveries, further Readys) with the write in flight, and a crash or a lost election in
// between leaves it unwritten or written but unanswered.
func (st termStore) PersistCheckpoint(cp uint64) (runner.Written, error) {
	if st.mt.state != maintRunning {
		return runner.Persisted, nil
	}
	c, mt := st.c, st.mt
	c.at(c.cfg.Tick, func() {
		if mt.state != maintRunning {
			return // the process died or was deposed before the write
		}
		if err := c.etcd.persist(mt, cp); err != nil {
			c.fail = err
			return
		}
		if c.leader != mt {
			mt.m.CheckpointNotPersisted() // the guarded write found the term over
			return
		}
		mt.m.CheckpointPersisted(cp)
	})
	return runner.Pending, nil
}

// Evict is a write guarded by the election key, as the server's: only the current leader's
// take effect, and one that evicts its own node loses its role on the way.
func (st termStore) Evict(node string) error {
	if st.mt.state != maintRunning {
		return nil
	}
	if st.c.leader != st.mt {
		if st.crashing {
			return nil
		}
		return errSelfEvicted
	}
	st.c.fault.evict(node)
	if st.c.leader != st.mt && !st.crashing {
		return errSelfEvicted
	}
	return nil
}

// persist is the guarded forward-only CAS: only the current leader writes, and never backwards.
func (c etcdView) persist(mt *maint, cp uint64) error {
	if cp == 0 || c.leader != mt {
		return nil
	}
	if reached := c.check.minReached(); cp > reached {
		return c.violation("I3: maintainer %s persists checkpoint %d above the %d every span reached", mt.node, cp, reached)
	}
	if cp > c.persisted {
		c.persisted = cp
	}
	return nil
}

// wire is the simulated network as a runner.Transport: a send never fails (loss, delay and
// duplication happen inside).
type wire struct{ *Cluster }

func (w wire) Send(env *heartbeatpb.Envelope) error {
	w.send(env)
	return nil
}

// crashingNetwork lets left more messages out, then fails: the process is gone.
type crashingNetwork struct {
	wire
	left int
}

func (n *crashingNetwork) Send(env *heartbeatpb.Envelope) error {
	if n.left == 0 {
		return errCrashed
	}
	n.left--
	return n.wire.Send(env)
}

package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/tidemark/tidemark/dispatchermanager"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/maintainer"
	"github.com/tidemark/tidemark/runner"
)

// Violation is a broken invariant, with what is needed to replay and read it.
type Violation struct {
	Seed      int64
	At        time.Duration // simulated time since the start
	Invariant string
	Trace     string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("sim: seed %d at %.1fs: %s\nlast events:\n%s", v.Seed, v.At.Seconds(), v.Invariant, v.Trace)
}

func (c *Cluster) violation(format string, args ...any) *Violation {
	return &Violation{Seed: c.cfg.Seed, At: c.now.Sub(t0), Invariant: fmt.Sprintf(format, args...), Trace: c.trace.String()}
}

// Run runs the fault phase (random faults when cfg.Faults) and the quiet phase, then checks
// convergence. It returns the first violation.
func (c *Cluster) Run() error {
	c.faults = c.cfg.Faults
	if err := c.RunFor(c.cfg.FaultTime); err != nil {
		return err
	}
	return c.Converge(c.cfg.QuietTime)
}

// RunFor advances the simulation by d.
func (c *Cluster) RunFor(d time.Duration) error {
	end := c.now.Add(d)
	for c.now.Before(end) {
		if err := c.step(); err != nil {
			return err
		}
	}
	return nil
}

// step advances the clock by one tick: scheduled actions, the election, random faults, every
// envelope due, then every core's Tick. Invariants are checked after each delivery and tick.
func (c *Cluster) step() error {
	c.now = c.now.Add(c.cfg.Tick)
	c.src.write(c.now, c.cfg.Tick)
	c.runDue()
	if c.fail != nil {
		return c.fail
	}
	if !c.electAt.IsZero() && !c.now.Before(c.electAt) {
		c.elect()
	}
	if c.faults {
		c.fault.randomFault()
	}
	for {
		env, ok := c.net.popDue(c.now)
		if !ok {
			break
		}
		if err := c.deliver(env); err != nil {
			return err
		}
	}
	for _, id := range c.order {
		n := c.nodes[id]
		if n.state != nodeUp {
			continue
		}
		n.dm.Tick(c.now)
		if err := c.afterNode(n); err != nil {
			return err
		}
	}
	for _, mt := range c.maints {
		if mt.state != maintRunning && mt.state != maintZombie {
			continue
		}
		mt.m.Tick(c.now)
		if err := c.flushMaint(mt); err != nil {
			return err
		}
	}
	if err := c.script.noteResume(); err != nil {
		return err
	}
	return c.check.checkLeader()
}

// deliver hands one envelope to the core it is for, as the server's route does.
func (c *Cluster) deliver(env *heartbeatpb.Envelope) error {
	n := c.nodes[env.To]
	if n == nil || n.state != nodeUp || n.partitioned {
		c.trace.add(c.now, "lost", env)
		return nil
	}
	switch env.Body.(type) {
	case *heartbeatpb.Envelope_Heartbeat, *heartbeatpb.Envelope_BootstrapResponse:
		// Once per answer: journal entries come last, so a cut answer has them in its last piece.
		if r := env.GetBootstrapResponse(); r != nil && len(r.Operators)+len(r.MergeOperators) > 0 &&
			(r.Chunk == nil || r.Chunk.Index == r.Chunk.Total-1) {
			c.counter["bootstrap-answers-with-journal"]++
		}
		if ch := env.GetBootstrapResponse().GetChunk(); ch != nil && ch.Index == 0 {
			c.counter["bootstrap-chunked-answers"]++
		}
		if ch := env.GetBootstrapResponse().GetChunk(); ch != nil {
			c.counter["bootstrap-chunks"]++
		}
		if ch := env.GetHeartbeat().GetChunk(); ch != nil {
			c.counter["listing-chunks"]++
		}
		mt := c.maintOn(env.To)
		if mt == nil {
			c.trace.add(c.now, "no maintainer", env)
			return nil
		}
		err := mt.m.Step(env, c.now)
		c.trace.add(c.now, stepNote(err), env)
		if c.forged[env] {
			if err == nil {
				return c.violation("I7: maintainer %s accepted a forged envelope", mt.node)
			}
			c.counter["forged-refused"]++
		} else if errors.Is(err, maintainer.ErrInvalid) {
			return c.violation("I7: maintainer %s refused a node's envelope as malformed: %v", mt.node, err)
		}
		if err := c.flushMaint(mt); err != nil {
			return err
		}
		return c.check.checkLeader()
	}
	err := n.dm.Step(env, c.now)
	c.trace.add(c.now, stepNote(err), env)
	switch {
	case err == nil && env.Epoch < n.toldEpoch:
		return c.violation("I5: %s acted on epoch %d after etcd told it epoch %d", n.id, env.Epoch, n.toldEpoch)
	case err == nil && (env.Epoch != n.toldEpoch || env.From != n.toldLeader):
		return c.violation("I5: %s acted on %s's epoch %d, but etcd told it %s leads epoch %d", n.id, env.From,
			env.Epoch, n.toldLeader, n.toldEpoch)
	case c.forged[env]:
		if errors.Is(err, dispatchermanager.ErrHeld) {
			c.counter["forged-held"]++
		} else {
			c.counter["forged-refused"]++
		}
	case errors.Is(err, dispatchermanager.ErrInvalid):
		return c.violation("I7: %s refused a maintainer envelope as malformed: %v", n.id, err)
	case errors.Is(err, dispatchermanager.ErrStaleEpoch):
		c.counter["fenced"]++
	}
	// A manager's step changes no maintainer state: I4 is checked where that changes.
	return c.afterNode(n)
}

func stepNote(err error) string {
	if err == nil {
		return "deliver"
	}
	return "refused (" + err.Error() + ")"
}

// maintOn returns the maintainer process acting on node: the running one or a zombie.
func (c *Cluster) maintOn(id string) *maint {
	var best *maint
	for _, mt := range c.maints {
		if mt.node == id && (mt.state == maintRunning || mt.state == maintZombie) && (best == nil || mt.epoch > best.epoch) {
			best = mt
		}
	}
	return best
}

// afterNode performs what a manager produced and checks I1 and I2 for it.
func (c *Cluster) afterNode(n *node) error {
	_ = runner.Manager(n.dm.Ready(), n.dm, c.wire) // the network never fails a send
	c.etcd.askLeader(n)
	if len(c.track.broken) > 0 {
		return c.violation("%s", c.track.broken[0])
	}
	n.working = n.working[:0]
	for _, st := range n.dm.Snapshot().Dispatchers {
		if st.State == heartbeatpb.StateWorking {
			n.working = append(n.working, st)
		}
	}
	return c.check.checkExclusive(n)
}

// flushMaint performs a maintainer's Ready as the server's loop does (runner.Maintainer: hand the
// checkpoint to the guarded CAS, which answers a tick later (ready.go), evict, send, Advance).
// With faults on, the process may crash anywhere in there, including between any two messages.
// A zombie's guarded writes fail unnoticed; it sends anyway.
func (c *Cluster) flushMaint(mt *maint) error {
	rd := mt.m.Ready()
	cut := c.script.checkKill(mt, len(rd.Messages))
	if cut < 0 && mt.state == maintRunning && c.faults && len(rd.Messages) > 0 && c.rng.Float64() < 0.004 {
		cut = c.rng.Intn(len(rd.Messages) + 1)
		c.counter["crash-mid-ready"]++
	}
	if cut >= 0 {
		c.tracef("fault: maintainer %s crashes after sending %d of %d messages", mt.node, cut, len(rd.Messages))
		err := runner.Maintainer(runner.Ready(rd), mt.m, termStore{c: c, mt: mt, crashing: true}, &crashingNetwork{c.wire, cut})
		if err != nil && !errors.Is(err, errCrashed) {
			return err
		}
		c.loseLeader(maintDead, 0)
		return nil
	}
	if mt.state == maintRunning && c.leader != mt {
		return nil // its term is over: its loops stopped, nothing more goes out
	}
	err := runner.Maintainer(runner.Ready(rd), mt.m, termStore{c: c, mt: mt}, c.wire)
	if errors.Is(err, errSelfEvicted) {
		return nil // it evicted its own node: its loops stopped, nothing more goes out
	}
	return err
}

// minReached is the least ts every key of every table and mode has durably reached.
func (c checker) minReached() uint64 {
	lowest := ^uint64(0)
	for _, t := range c.tables {
		for _, mode := range c.modes() {
			lowest = min(lowest, c.track.reached(spanOfTable(t.TableId), mode))
		}
	}
	return lowest
}

func (c checker) modes() []heartbeatpb.Mode {
	if c.cfg.Redo {
		return []heartbeatpb.Mode{heartbeatpb.ModeDefault, heartbeatpb.ModeRedo}
	}
	return []heartbeatpb.Mode{heartbeatpb.ModeDefault}
}

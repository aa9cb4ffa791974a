package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// killSpec is a pending "kill the maintainer when one of its operators of Kind is in Phase".
type killSpec struct {
	kind  string // OpAdd, OpMove, ...
	phase string
	cut   string // how much of the Ready in flight gets out first: none, half, all
}

// intent is the operator a kill interrupted, as its journal entries describe it.
type intent struct {
	desc    heartbeatpb.OperatorDescriptor
	epoch   uint64 // of the maintainer that was killed
	phase   string
	resumed string // what the next maintainer did with it
}

// KillMaintainerAt arms a kill: the first time the current maintainer is about to send a Ready
// while one of its operators of kind is in phase, it crashes after sending part of it (cut).
func (c *Cluster) KillMaintainerAt(kind, phase, cut string) { c.kill = &killSpec{kind, phase, cut} }

// checkKill is called with the leader's Ready in hand; it reports how many of its messages go
// out before the crash, or -1 when no kill is due.
func (c script) checkKill(mt *maint, msgs int) int {
	if c.kill == nil || mt != c.leader || !mt.m.Bootstrapped() {
		return -1
	}
	for _, o := range mt.m.InFlight() {
		if o.Kind.String() != c.kill.kind || o.Phase != c.kill.phase {
			continue
		}
		desc, ok := c.descriptor(o.ID)
		if !ok {
			continue // not journaled by any node yet: nothing to restore from
		}
		c.interrupted = &intent{desc: desc, epoch: mt.epoch, phase: o.Phase}
		cut := map[string]int{"none": 0, "half": msgs / 2, "all": msgs}[c.kill.cut]
		c.tracef("scenario: kill maintainer %s epoch %d with %v %d.%d in %s, after %d of %d messages", mt.node,
			mt.epoch, o.Kind, o.ID.Epoch, o.ID.Seq, o.Phase, cut, msgs)
		c.kill = nil
		return cut
	}
	return -1
}

// descriptor finds an operator's descriptor in the journals of the nodes that are up.
func (c script) descriptor(id heartbeatpb.OperatorID) (heartbeatpb.OperatorDescriptor, bool) {
	for _, nid := range c.order {
		n := c.nodes[nid]
		if n.state != nodeUp {
			continue
		}
		snap := n.dm.Snapshot()
		for _, op := range snap.Operators {
			if op.Request.Operator.Id == id {
				return op.Request.Operator, true
			}
		}
		for _, m := range snap.Merges {
			if m.Request.Operator.Id == id {
				return m.Request.Operator, true
			}
		}
	}
	return heartbeatpb.OperatorDescriptor{}, false
}

// noteResume records what the first maintainer after an interrupting kill did with the
// operator once its restore ran.
func (c script) noteResume() error {
	it := c.interrupted
	if it == nil || it.resumed != "" || c.leader == nil || c.leader.epoch == it.epoch {
		return nil
	}
	if !c.leader.m.Bootstrapped() {
		return nil
	}
	it.resumed = "finished at restore"
	for _, o := range c.leader.m.InFlight() {
		if o.ID == it.desc.Id {
			it.resumed = "resumed in phase " + o.Phase
		}
	}
	return nil
}

// CheckIntent verifies that the interrupted operator completed with its original intent: each
// dispatcher it creates was created exactly once, on its original node, with replay distance 0
// (its start ts equal to how far its range had reached), and no dispatcher ID was created twice.
func (c *Cluster) CheckIntent() (string, error) {
	it := c.interrupted
	if it == nil {
		return "", c.violation("scenario: the kill never fired")
	}
	d := it.desc
	var b strings.Builder
	fmt.Fprintf(&b, "%v killed in %s; next maintainer: %s\n", d.Kind, it.phase, it.resumed)
	seen := map[heartbeatpb.DispatcherID]int{}
	for _, cr := range c.track.creations {
		seen[cr.id]++
	}
	for id, n := range seen {
		if n > 1 {
			return b.String(), c.violation("scenario: dispatcher %d.%d created %d times", id.Hi, id.Lo, n)
		}
	}
	targets := d.Targets
	if d.Kind == heartbeatpb.OpRemove {
		for _, s := range d.Sources {
			if c.script.working(s.NodeId, s.DispatcherId) {
				return b.String(), c.violation("scenario: removed dispatcher %d.%d still works", s.DispatcherId.Hi, s.DispatcherId.Lo)
			}
			fmt.Fprintf(&b, "source removed\n")
		}
	}
	for _, p := range targets {
		cr, ok := c.script.creation(p.NodeId, p.DispatcherId)
		if !ok {
			return b.String(), c.violation("scenario: target %s/%d.%d was never created", p.NodeId, p.DispatcherId.Hi, p.DispatcherId.Lo)
		}
		replay := cr.reached - cr.startTs
		fmt.Fprintf(&b, "target created once on its original node, replay distance %d\n", replay)
		if replay != 0 && d.Kind != heartbeatpb.OpAdd {
			return b.String(), c.violation("scenario: target %d.%d replays %d", p.DispatcherId.Hi, p.DispatcherId.Lo, replay)
		}
	}
	return b.String(), nil
}

func (c script) creation(node string, id heartbeatpb.DispatcherID) (creation, bool) {
	for _, cr := range c.track.creations {
		if cr.node == node && cr.id == id {
			return cr, true
		}
	}
	return creation{}, false
}

func (c script) working(node string, id heartbeatpb.DispatcherID) bool {
	n := c.nodes[node]
	if n == nil || n.state != nodeUp {
		return false
	}
	for _, st := range n.working {
		if st.Id == id {
			return true
		}
	}
	return false
}

// Summary describes the converged cluster for scenario output, in terms that do not depend on
// which node won which election: spans by state.
func (c *Cluster) Summary() string {
	if c.leader == nil {
		return "no maintainer\n"
	}
	st := c.leader.m.Status()
	return fmt.Sprintf("spans: absent=%d scheduling=%d replicating=%d\n", st.Spans["absent"], st.Spans["scheduling"],
		st.Spans["replicating"])
}

// RunUntil advances until cond holds or d passed; false when it never held.
func (c *Cluster) RunUntil(d time.Duration, cond func() bool) (bool, error) {
	end := c.now.Add(d)
	for c.now.Before(end) {
		if cond() {
			return true, nil
		}
		if err := c.step(); err != nil {
			return false, err
		}
	}
	return cond(), nil
}

// RemoveTable takes a table out of the changefeed: the config changes in etcd and the current
// maintainer is told (UpdateConfig); later maintainers start with the new config.
func (c *Cluster) RemoveTable(id int64) error {
	kept := c.tables[:0:0]
	for _, t := range c.tables {
		if t.TableId != id {
			kept = append(kept, t)
		}
	}
	c.tables = kept
	c.tracef("scenario: table %d leaves the changefeed", id)
	if c.leader == nil {
		return nil
	}
	return c.leader.m.UpdateConfig(c.changefeedConfig(), c.now)
}

package sim

import (
	"errors"
	"time"

	"github.com/tidemark/tidemark/dispatchermanager"
)

// tellLeader delivers etcd's leader watch to node n: the manager confirms (epoch, leader) and
// steps the envelopes it held for exactly that, which may act, so the invariants are checked.
func (c etcdView) tellLeader(n *node, epoch uint64, leader string) {
	if epoch > n.toldEpoch {
		n.toldEpoch, n.toldLeader = epoch, leader
	}
	c.tracef("etcd watch tells %s: %s leads epoch %d", n.id, leader, epoch)
	c.noteReleased(n, n.dm.SetEpoch(epoch, leader, c.now))
}

// askLeader answers a manager's leader query as a linearizable etcd read does: after a short
// delay, with whoever leads at that moment (nobody, between terms). The read happens after the
// query was asked, which is what lets the manager drop held envelopes the answer does not confirm.
func (c etcdView) askLeader(n *node) {
	q, ok := n.dm.LeaderQuery(c.now)
	if !ok {
		return
	}
	c.counter["leader-reads"]++
	inc := n.incarnation
	c.at(time.Duration(5+c.rng.Int63n(45))*time.Millisecond, func() {
		if n.incarnation != inc || n.state != nodeUp {
			return
		}
		r := dispatchermanager.LeaderReply{Query: q}
		if c.leader != nil {
			r.Epoch, r.Leader = c.leader.epoch, c.leader.node
			if r.Epoch > n.toldEpoch {
				n.toldEpoch, n.toldLeader = r.Epoch, r.Leader
			}
		}
		c.tracef("etcd read answers %s: %q leads epoch %d", n.id, r.Leader, r.Epoch)
		c.noteReleased(n, n.dm.OnLeaderReply(r, c.now))
	})
}

// noteReleased checks what stepping released envelopes did, like a delivery: a real envelope
// refused as malformed is an I7 violation, and I1/I2 are checked on the node.
func (c etcdView) noteReleased(n *node, err error) {
	if c.fail != nil {
		return
	}
	if err != nil && errors.Is(err, dispatchermanager.ErrInvalid) {
		c.fail = c.violation("I7: %s refused a held maintainer envelope as malformed: %v", n.id, err)
		return
	}
	if err := c.afterNode(n); err != nil {
		c.fail = err
	}
}

package dispatchermanager

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// SetNodes tells the manager the registered node IDs, as the registry watch reports them.
// Envelopes from any other sender are refused (ErrUnknownSender) before anything else.
func (m *Manager) SetNodes(ids []string) { m.gate.setRegistered(ids) }

// SetEpoch tells the manager the changefeed's election leader as etcd's watch reports it: the
// epoch (its key's create revision) and the node its value names. etcd's view wins over any
// message: held envelopes of exactly that epoch and sender are stepped now, held ones of a lower
// or equal epoch are dropped. A confirmed epoch never goes back: an older one is a lagging
// watch and is ignored. The error joins those of the envelopes it stepped.
func (m *Manager) SetEpoch(epoch uint64, maintainer string, now time.Time) error {
	if m.closed || epoch == 0 || maintainer == "" {
		return nil // nobody leads: the last confirmed leader stays until etcd names another
	}
	if epoch < m.gate.epoch {
		m.log.Debug("ignoring older epoch from etcd", zap.Uint64("epoch", epoch), zap.Uint64("current", m.gate.epoch))
		return nil
	}
	if m.gate.confirm(m.log, epoch, maintainer) {
		// Rejections answered the old maintainer's requests (the new one never sent them), and
		// the new maintainer wants a full picture soon after its bootstrap.
		m.rejections, m.lastReport, m.sentMarks = nil, time.Time{}, nil
	}
	return m.release(epoch, maintainer, 0, now)
}

// LeaderQuery returns a leader read for the runner to make when an envelope of an unconfirmed
// epoch is held and no read since covers it: etcd is asked rather than waiting for the watch.
// At most one is open at a time, and they are rate limited. Answer with OnLeaderReply.
func (m *Manager) LeaderQuery(now time.Time) (LeaderQuery, bool) {
	if m.closed {
		return LeaderQuery{}, false
	}
	return m.gate.query(now)
}

// OnLeaderReply takes the answer to a LeaderQuery. Like SetEpoch it confirms the leader it
// names; in addition, held envelopes that arrived before the query was handed out and do not
// match are dropped whatever their epoch: the read started after they arrived and saw no such
// maintainer, so none can exist. A failed read changes nothing (a later query asks again).
func (m *Manager) OnLeaderReply(r LeaderReply, now time.Time) error {
	if m.closed {
		return nil
	}
	if r.Err != nil {
		m.gate.failed(r.Query)
		return nil
	}
	open := m.gate.answered(r.Query)
	var refutes uint64
	if open {
		refutes = r.Query.ID
	}
	if r.Epoch > 0 && r.Leader != "" && r.Epoch >= m.gate.epoch {
		if m.gate.confirm(m.log, r.Epoch, r.Leader) {
			m.rejections, m.lastReport, m.sentMarks = nil, time.Time{}, nil // as in SetEpoch
		}
	}
	return m.release(r.Epoch, r.Leader, refutes, now)
}

// confirm makes epoch and leader, as etcd named them, the current ones (epoch >= g.epoch). It
// reports whether the epoch changed: a new maintainer then needs a fresh start of the reports.
func (g *gate) confirm(log *zap.Logger, epoch uint64, leader string) (adopted bool) {
	if epoch == g.epoch {
		if leader != g.maintainer {
			// One key per create revision: only a broken etcd answer could do this.
			log.Warn("etcd names another leader for the confirmed epoch; following etcd",
				zap.Uint64("epoch", epoch), zap.String("was", g.maintainer), zap.String("now", leader))
			g.maintainer = leader
		}
		return false
	}
	log.Info("adopting epoch confirmed by etcd", zap.Uint64("epoch", epoch), zap.Uint64("previous", g.epoch),
		zap.String("maintainer", leader))
	g.epoch = epoch
	g.maintainer = leader
	return true
}

// release steps the held envelopes etcd just confirmed and drops those it ruled out.
func (m *Manager) release(epoch uint64, leader string, refutes uint64, now time.Time) error {
	confirmed, drops := m.gate.release(epoch, leader, refutes)
	if drops > 0 {
		m.log.Warn("dropped held envelopes whose epoch and sender etcd did not confirm",
			zap.Int("dropped", drops), zap.Uint64("epoch", epoch), zap.String("leader", leader))
	}
	var errs []error
	for _, env := range confirmed {
		if err := m.Step(env, now); err != nil && !errors.Is(err, ErrDuplicate) {
			errs = append(errs, fmt.Errorf("held envelope from %s seq %d: %w", env.From, env.Seq, err))
		}
	}
	return errors.Join(errs...)
}

// expireHeld drops held envelopes etcd neither confirmed nor refuted in time.
func (g *gate) expireHeld(log *zap.Logger, now time.Time) {
	if n := g.expire(now); n > 0 {
		log.Warn("dropped held envelopes: etcd did not confirm their epoch in time",
			zap.Int("dropped", n), zap.Duration("hold_timeout", holdTimeout))
	}
}

// admit is the sender and epoch check of Step: a registered sender, an envelope newer than the
// last accepted from it, and the confirmed epoch with its leader (or a higher one, to hold).
func (g *gate) admit(env *heartbeatpb.Envelope) error {
	if !g.registered[env.From] {
		return fmt.Errorf("%w: %q (epoch %d seq %d)", ErrUnknownSender, env.From, env.Epoch, env.Seq)
	}
	if !g.recv.IsNew(env) {
		_, last := g.recv.Last(env.From)
		return fmt.Errorf("%w: from %s incarnation %d seq %d, last accepted %d",
			ErrDuplicate, env.From, env.Incarnation, env.Seq, last)
	}
	if env.Epoch < g.epoch {
		return fmt.Errorf("%w: from %s epoch %d, current %d", ErrStaleEpoch, env.From, env.Epoch, g.epoch)
	}
	if env.Epoch == g.epoch && env.From != g.maintainer {
		return fmt.Errorf("%w: epoch %d belongs to maintainer %s, not %s", ErrNotLeader, env.Epoch, g.maintainer, env.From)
	}
	return nil
}

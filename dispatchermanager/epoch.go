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
	if epoch < m.epoch {
		m.log.Debug("ignoring older epoch from etcd", zap.Uint64("epoch", epoch), zap.Uint64("current", m.epoch))
		return nil
	}
	m.confirm(epoch, maintainer)
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
	if r.Epoch > 0 && r.Leader != "" && r.Epoch >= m.epoch {
		m.confirm(r.Epoch, r.Leader)
	}
	return m.release(r.Epoch, r.Leader, refutes, now)
}

// confirm makes epoch and leader, as etcd named them, the current ones (epoch >= m.epoch).
func (m *Manager) confirm(epoch uint64, leader string) {
	if epoch == m.epoch {
		if leader != m.maintainer {
			// One key per create revision: only a broken etcd answer could do this.
			m.log.Warn("etcd names another leader for the confirmed epoch; following etcd",
				zap.Uint64("epoch", epoch), zap.String("was", m.maintainer), zap.String("now", leader))
			m.maintainer = leader
		}
		return
	}
	m.log.Info("adopting epoch confirmed by etcd", zap.Uint64("epoch", epoch), zap.Uint64("previous", m.epoch),
		zap.String("maintainer", leader))
	m.epoch = epoch
	m.maintainer = leader
	// Rejections answered the old maintainer's requests; the new one never sent them.
	m.rejections = nil
	// The new maintainer wants a full picture soon after its bootstrap.
	m.lastFull = time.Time{}
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
func (m *Manager) expireHeld(now time.Time) {
	if n := m.gate.expire(now); n > 0 {
		m.log.Warn("dropped held envelopes: etcd did not confirm their epoch in time",
			zap.Int("dropped", n), zap.Duration("hold_timeout", holdTimeout))
	}
}

// admit is the sender and epoch check of Step: a registered sender, an envelope newer than the
// last accepted from it, and the confirmed epoch with its leader (or a higher one, to hold).
func (m *Manager) admit(env *heartbeatpb.Envelope) error {
	if !m.gate.registered[env.From] {
		return fmt.Errorf("%w: %q (epoch %d seq %d)", ErrUnknownSender, env.From, env.Epoch, env.Seq)
	}
	if !m.recv.IsNew(env) {
		_, last := m.recv.Last(env.From)
		return fmt.Errorf("%w: from %s incarnation %d seq %d, last accepted %d",
			ErrDuplicate, env.From, env.Incarnation, env.Seq, last)
	}
	if env.Epoch < m.epoch {
		return fmt.Errorf("%w: from %s epoch %d, current %d", ErrStaleEpoch, env.From, env.Epoch, m.epoch)
	}
	if env.Epoch == m.epoch && env.From != m.maintainer {
		return fmt.Errorf("%w: epoch %d belongs to maintainer %s, not %s", ErrNotLeader, env.Epoch, m.maintainer, env.From)
	}
	return nil
}

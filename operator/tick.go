package operator

import (
	"container/heap"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// Tick resends the requests of every operator whose phase is due, rolls back those whose phase
// timed out, and warns about stuck ones. Only due operators are looked at: each is due at least
// every ResendInterval, so a timeout is noticed within one interval of expiring.
func (c *Controller) Tick(now time.Time) []Outgoing {
	var out []Outgoing
	for {
		due, ok := c.due.peekDue()
		if !ok || due.After(now) {
			break
		}
		e := c.due[0]
		c.warnIfStuck(e, now)
		var sent []Outgoing
		if c.timedOut(e, now) {
			sent = c.abort(e, now)
		} else {
			sent = e.op.Resend(now)
		}
		out = append(out, sent...)
		e.due = now.Add(c.cfg.ResendInterval)
		heap.Fix(&c.due, e.index)
		c.settle(e, nil, now)
	}
	return out
}

// timedOut reports whether e's phase has had neither progress nor a refusal for PhaseTimeout.
// A refusal always ends or changes a phase, so "no phase change" covers both.
func (c *Controller) timedOut(e *entry, now time.Time) bool {
	return !e.aborted && now.Sub(e.phaseSince) >= c.cfg.PhaseTimeout
}

// abort rolls e's operator back, once. An operator that cannot roll back on its own (a Merge is
// one request that its node carries out whole) keeps waiting for its node's answer or loss; the
// stuck warning keeps naming it.
func (c *Controller) abort(e *entry, now time.Time) []Outgoing {
	e.aborted = true
	c.timeouts[e.op.Type()]++
	id := e.op.ID()
	fields := []zap.Field{zap.Stringer("operator", &id), zap.Stringer("kind", e.op.Type()),
		zap.String("phase", e.phase), zap.Strings("nodes", e.nodes), zap.Duration("waited", now.Sub(e.phaseSince))}
	a, ok := e.op.(Aborter)
	if !ok {
		c.cfg.Logger.Warn("operator phase timed out; it cannot roll back by itself, waiting for its node", fields...)
		return e.op.Resend(now)
	}
	c.cfg.Logger.Warn("operator phase timed out; rolling back", fields...)
	return a.Abort(now)
}

// TimedOut returns how many operators of each kind had a phase time out.
func (c *Controller) TimedOut() map[heartbeatpb.OperatorType]uint64 {
	out := make(map[heartbeatpb.OperatorType]uint64, len(c.timeouts))
	for k, v := range c.timeouts {
		out[k] = v
	}
	return out
}

func (c *Controller) warnIfStuck(e *entry, now time.Time) {
	age := now.Sub(e.started)
	if age < c.cfg.StuckAfter || now.Sub(e.warnedAt) < c.cfg.StuckAfter {
		return
	}
	e.warnedAt = now
	id := e.op.ID()
	c.cfg.Logger.Warn("operator stuck", zap.Stringer("operator", &id), zap.Stringer("kind", e.op.Type()),
		zap.String("phase", phaseOf(e.op)), zap.Strings("nodes", e.nodes), zap.Duration("age", age))
}

// phaseOf names op's current phase, or "" when it cannot say.
func phaseOf(op Operator) string {
	if p, ok := op.(Phaser); ok {
		return p.Phase()
	}
	return ""
}

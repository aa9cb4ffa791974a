package dispatchermanager

import (
	"time"

	"github.com/tidemark/tidemark/dispatcher"

	"go.uber.org/zap"
)

// DefaultUnhealthyAfter is how long the sink may fail before SinkHealth calls the node
// unhealthy, when Config leaves UnhealthyAfter zero.
const DefaultUnhealthyAfter = 30 * time.Second

// sinkState is the sink's health as the flushes found it; the zero value is healthy.
type sinkState struct {
	failing bool
	since   time.Time // the first failed flush of this outage
	cause   string    // that flush's error, reported on every working status
	errors  uint64    // failed flushes (refusals while the sink backs off included)
}

// SinkHealth is the sink of one changefeed on this node as the manager sees it.
type SinkHealth struct {
	Failing bool
	Since   time.Time
	Cause   string
	// Unhealthy: failing for UnhealthyAfter or longer; the node should mark itself so that
	// maintainers move its spans away.
	Unhealthy bool
	// Errors counts failed flushes since the manager started.
	Errors uint64
}

// SinkHealth reports the sink's health at now (the caller's clock, as every input).
func (m *Manager) SinkHealth(now time.Time) SinkHealth {
	return SinkHealth{
		Failing: m.sink.failing, Since: m.sink.since, Cause: m.sink.cause, Errors: m.sink.errors,
		Unhealthy: m.sink.failing && now.Sub(m.sink.since) >= m.cfg.UnhealthyAfter,
	}
}

// flush flushes the factory's sink and records the outcome. ok: everything polled so far is
// durable. turned: the sink went from healthy to failing or back, so every working status
// changes its error. The sink does its own retry backoff, so calling this every tick is cheap.
func (s *sinkState) flush(f dispatcher.Factory, now time.Time, log *zap.Logger) (ok, turned bool) {
	err := f.Flush()
	if err == nil {
		if s.failing {
			log.Info("sink flushes again; checkpoints move", zap.Duration("failed-for", now.Sub(s.since)))
			*s = sinkState{errors: s.errors}
			return true, true
		}
		return true, false
	}
	s.errors++
	if s.failing {
		return false, false
	}
	s.failing, s.since, s.cause = true, now, err.Error()
	log.Warn("sink flush failed; reporting durable checkpoints with the error", zap.Error(err))
	return false, true
}

// flushDurable flushes and, on success, makes every checkpoint of t polled so far the durable one.
func (s *sinkState) flushDurable(f dispatcher.Factory, t *dispatcherTable, now time.Time, log *zap.Logger) bool {
	ok, _ := s.flush(f, now, log)
	if ok {
		for _, e := range t.all {
			if e.checkpoint > e.durable {
				e.durable = e.checkpoint // the watermark carries it; no state changed
			}
		}
	}
	return ok
}

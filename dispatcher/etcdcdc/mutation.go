package etcdcdc

import (
	"github.com/pingcap/failpoint"
	"go.uber.org/zap"
)

// skipFirstEvent is a mutation for the chaos suite, never a behaviour: with failpoint
// skip-first-event on, a dispatcher drops the first event its watch delivers while the batch
// still moves its checkpoint past it, as a dispatcher that lost an event on restart would.
// tests/failover enables it on a node that takes spans over and asserts that its data check
// names the lost event. The watch goroutine alone calls it.
func (d *Dispatcher) skipFirstEvent(b *batch) {
	failpoint.Inject("skip-first-event", func() {
		if !d.skipped && len(b.events) > 0 {
			d.skipped = true
			d.log.Warn("failpoint skip-first-event: event dropped", zap.ByteString("key", b.events[0].Key),
				zap.Int64("revision", b.events[0].Revision))
			b.events = b.events[1:]
		}
	})
}

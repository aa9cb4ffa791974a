package maintainer

// checkpointState is the changefeed checkpoint as the core knows it. computed is the minimum
// over every span and mode (absent spans counting with the ts they resume from) and never moves
// backwards; persisted is the last value etcd is known to hold, the only one messages and
// Status carry; persisting is the value handed to the runner's writer and not yet answered (0:
// none). One write is in flight at a time, and the newest computed value is asked for once it is
// answered.
type checkpointState struct {
	computed   uint64
	persisted  uint64
	persisting uint64
}

// due is the checkpoint a Ready should ask to persist, 0 for none.
func (c *checkpointState) due() uint64 {
	if c.computed > c.persisted && c.persisting == 0 {
		return c.computed
	}
	return 0
}

// handedOver records an advanced Ready's checkpoint (0: it asked for none) as in flight.
func (c *checkpointState) handedOver(cp uint64) {
	if cp > 0 {
		c.persisting = cp
	}
}

// written: etcd holds cp.
func (c *checkpointState) written(cp uint64) {
	c.persisted = max(c.persisted, cp)
	c.computed = max(c.computed, c.persisted)
	c.persisting = 0
}

// failed: the write in flight did not happen.
func (c *checkpointState) failed() { c.persisting = 0 }

// update recomputes computed from the span DB; it never moves backwards.
func (c *checkpointState) update(db *spanDB) {
	if cp, ok := db.minCheckpoint(); ok && cp > c.computed {
		c.computed = cp
	}
}

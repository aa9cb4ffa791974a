package maintainer

import "time"

// configPush tracks the nodes that have not confirmed the latest changefeed config. A node
// takes a bootstrap request as a config update, and its answer confirms it. The zero value is
// ready.
type configPush struct {
	// sent: ready nodes that have not confirmed the latest config, and when it was last sent
	// to them. changed: the config changed during this term.
	sent    map[string]time.Time
	changed bool
}

// push sends node the current config.
func (c *configPush) push(out *outbox, node string, now time.Time) {
	mapSet(&c.sent, node, now)
	out.bootstrap[node] = true
}

// resend repeats the config to nodes that have not confirmed it, on the resend throttle.
func (c *configPush) resend(out *outbox, nodes *nodeSet, now time.Time, every time.Duration) {
	for id, at := range c.sent {
		switch {
		case nodes.get(id) == nil:
			delete(c.sent, id)
		case now.Sub(at) >= every:
			c.push(out, id, now)
		}
	}
}

// acked: node answered a bootstrap request, so it holds the config sent last.
func (c *configPush) acked(node string) { delete(c.sent, node) }

// suspect: node refused a request after the config changed in this term; it may have missed
// the update (an old answer may have been taken for its confirmation), so it is sent again.
// Idempotent on the node.
func (c *configPush) suspect(out *outbox, nodes *nodeSet, node string, now time.Time) {
	if !c.changed || !nodes.ready(node) {
		return
	}
	if _, pending := c.sent[node]; !pending {
		c.push(out, node, now)
	}
}

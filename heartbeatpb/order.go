package heartbeatpb

import (
	"errors"
	"fmt"
)

// The ordering rule of the protocol (docs/protocol.md, "The envelope"): a sender numbers its
// envelopes per receiver within one incarnation, and a receiver drops what is not newer than
// the last envelope it accepted from that sender. Duplicates and reordering become loss, which
// resending repairs. Both cores apply the rule with the two types below.

// streamPosition is where one sender's stream stood when its last envelope was accepted.
type streamPosition struct{ incarnation, seq uint64 }

// OrderFilter remembers, per sender, the last envelope accepted. The zero value is not usable;
// call NewOrderFilter.
type OrderFilter struct {
	last map[string]streamPosition
}

// NewOrderFilter returns a filter that has accepted nothing yet.
func NewOrderFilter() *OrderFilter {
	return &OrderFilter{last: make(map[string]streamPosition)}
}

// IsNew reports whether env comes after everything accepted from its sender: a higher seq in
// the same incarnation, or any other incarnation (the sender restarted). It changes nothing,
// so a receiver can check first and Accept only once the envelope passed its other checks.
func (f *OrderFilter) IsNew(env *Envelope) bool {
	last, seen := f.last[env.From]
	return !seen || env.Incarnation != last.incarnation || env.Seq > last.seq
}

// Accept records env as the last envelope accepted from its sender. restarted is true when an
// earlier envelope of another incarnation had been accepted: the sender's process changed.
func (f *OrderFilter) Accept(env *Envelope) (restarted bool) {
	last, seen := f.last[env.From]
	f.last[env.From] = streamPosition{incarnation: env.Incarnation, seq: env.Seq}
	return seen && env.Incarnation != last.incarnation
}

// Last returns the incarnation and seq last accepted from sender, for error messages.
func (f *OrderFilter) Last(sender string) (incarnation, seq uint64) {
	p := f.last[sender]
	return p.incarnation, p.seq
}

// Sequencer numbers a sender's outgoing envelopes per receiver: 1, 2, 3, ...
type Sequencer struct {
	next map[string]uint64
}

// NewSequencer returns a sequencer that has numbered nothing yet.
func NewSequencer() *Sequencer { return &Sequencer{next: make(map[string]uint64)} }

// Next returns the seq of the next envelope to receiver.
func (s *Sequencer) Next(receiver string) uint64 {
	s.next[receiver]++
	return s.next[receiver]
}

// CheckRoute reports why env is not addressed to the receiver (cluster, changefeed, node) or
// has no sender, or nil. Both cores check this first and wrap the error as their invalid input.
func (e *Envelope) CheckRoute(cluster, changefeed, node string) error {
	switch {
	case e == nil:
		return errors.New("nil envelope")
	case e.ClusterId != cluster:
		return fmt.Errorf("envelope for cluster %q, this is %q", e.ClusterId, cluster)
	case e.Changefeed != changefeed:
		return fmt.Errorf("envelope for changefeed %q, this is %q", e.Changefeed, changefeed)
	case e.To != node:
		return fmt.Errorf("envelope to %q delivered to %q", e.To, node)
	case e.From == "":
		return errors.New("envelope without sender")
	}
	return nil
}

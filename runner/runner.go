package runner

import "github.com/tidemark/tidemark/heartbeatpb"

// Ready is what a maintainer core asks its runner to do; maintainer.Ready converts to it.
type Ready struct {
	Messages   []*heartbeatpb.Envelope
	Checkpoint uint64
	Evict      []string
}

// MaintainerCore is the part of a maintainer core the runner reports back to.
type MaintainerCore interface {
	// CheckpointNotPersisted: the Ready's checkpoint was not written; Advance must not count it.
	CheckpointNotPersisted()
	// Advance acknowledges the Ready: checkpoint persisted, messages handed to the transport.
	Advance()
}

// Store is the etcd side of one maintainer term. Every write is guarded by the term's election
// key, so a deposed maintainer changes nothing.
type Store interface {
	// PersistCheckpoint writes cp forward-only. persisted false with a nil error is a failed
	// write that the core asks again on a later Ready; an error ends the flush (leadership lost,
	// or in the simulator a broken invariant).
	PersistCheckpoint(cp uint64) (persisted bool, err error)
	// Evict deletes a silent node's registration. A failed delete the core asks again on its
	// throttle is the store's to log, with a nil error; an error ends the flush before anything
	// is sent (leadership lost, or the maintainer evicted its own node and stops acting).
	Evict(node string) error
}

// Transport hands one envelope to the network. The server's transport never fails a send (the
// protocol repairs loss by resending); an error ends the flush before Advance, which is how the
// simulator crashes a maintainer between two messages.
type Transport interface {
	Send(env *heartbeatpb.Envelope) error
}

// SendFunc adapts a function that cannot fail, such as messaging.Transport's Send, to Transport.
type SendFunc func(env *heartbeatpb.Envelope)

// Send hands env to f.
func (f SendFunc) Send(env *heartbeatpb.Envelope) error {
	f(env)
	return nil
}

// Maintainer performs rd: persist its checkpoint, evict the nodes it names, send its messages in
// order, then Advance. The order is the safety argument: a checkpoint is durable before any
// message built on it leaves, and nothing goes out once the store says the term is over. An
// error from the store or the transport is returned with the core not advanced: the caller ends
// the term (or, in the simulator, the process).
func Maintainer(rd Ready, core MaintainerCore, store Store, tr Transport) error {
	if rd.Checkpoint > 0 {
		persisted, err := store.PersistCheckpoint(rd.Checkpoint)
		if err != nil {
			return err
		}
		if !persisted {
			core.CheckpointNotPersisted()
		}
	}
	for _, node := range rd.Evict {
		if err := store.Evict(node); err != nil {
			return err
		}
	}
	if err := send(rd.Messages, tr); err != nil {
		return err
	}
	core.Advance()
	return nil
}

// Advancer is a core whose Ready is only messages: a dispatcher manager.
type Advancer interface{ Advance() }

// Manager performs a dispatcher manager's Ready: send msgs in order, then Advance. A send error
// is returned with the core not advanced.
func Manager(msgs []*heartbeatpb.Envelope, core Advancer, tr Transport) error {
	if err := send(msgs, tr); err != nil {
		return err
	}
	core.Advance()
	return nil
}

func send(msgs []*heartbeatpb.Envelope, tr Transport) error {
	for _, env := range msgs {
		if err := tr.Send(env); err != nil {
			return err
		}
	}
	return nil
}

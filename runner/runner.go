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
	// CheckpointPersisted: etcd holds the checkpoint a Ready asked for.
	CheckpointPersisted(cp uint64)
	// CheckpointNotPersisted: the checkpoint a Ready asked for was not written; the core asks
	// again.
	CheckpointNotPersisted()
	// Advance acknowledges the Ready: messages handed to the transport, checkpoint to the store.
	Advance()
}

// Written is how a Store's checkpoint write came out.
type Written int

const (
	// Persisted: etcd holds the checkpoint.
	Persisted Written = iota
	// NotPersisted: the write failed and may be asked again.
	NotPersisted
	// Pending: the write goes on off the loop (CheckpointWriter); its CheckpointResult reaches
	// the core later, through Apply.
	Pending
)

func (w Written) String() string {
	switch w {
	case Persisted:
		return "persisted"
	case NotPersisted:
		return "not persisted"
	case Pending:
		return "pending"
	}
	return "unknown"
}

// Store is the etcd side of one maintainer term. Every write is guarded by the term's election
// key, so a deposed maintainer changes nothing.
type Store interface {
	// PersistCheckpoint writes cp forward-only, or starts to (Pending). An error ends the flush
	// (leadership lost, or in the simulator a broken invariant).
	PersistCheckpoint(cp uint64) (Written, error)
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

// Maintainer performs rd: persist its checkpoint (or start to), evict the nodes it names, send
// its messages in order, Advance, then report a checkpoint the store wrote in place (a result
// always follows the Advance that handed its checkpoint over, as an off-loop one does). Nothing goes
// out once the store says the term is over. The messages do not depend on the checkpoint write:
// the core stamps them with the checkpoint etcd already holds, so a store may write off the loop
// (Pending) and the sends need not wait for a raft commit. An error from the store or the
// transport is returned with the core not advanced: the caller ends the term (or, in the
// simulator, the process).
func Maintainer(rd Ready, core MaintainerCore, store Store, tr Transport) error {
	written := Pending
	if rd.Checkpoint > 0 {
		var err error
		if written, err = store.PersistCheckpoint(rd.Checkpoint); err != nil {
			return err
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
	switch written {
	case Persisted:
		core.CheckpointPersisted(rd.Checkpoint)
	case NotPersisted:
		core.CheckpointNotPersisted()
	}
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

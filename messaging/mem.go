package messaging

import (
	"context"
	"sync"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// MemNetwork connects in-memory transports, for unit tests. Each joined node has a bounded inbox
// and one delivery goroutine that calls its handler in arrival order, so Send never blocks and
// never calls a handler on the sender's goroutine. Envelopes are copied through the wire codec,
// so sender and receiver never share memory, as over the network.
//
// Faults: SetPartition cuts two nodes apart, SetDropTo drops everything sent to a node. Dropped
// envelopes are counted on the sender (reason fault).
type MemNetwork struct {
	mu      sync.Mutex
	nodes   map[string]*MemTransport
	cut     map[[2]string]bool // normalized pair, smaller ID first
	dropTo  map[string]bool
	pending int           // envelopes queued or being handled, network-wide
	idle    chan struct{} // closed when pending drops to zero
}

// NewMemNetwork returns an empty network.
func NewMemNetwork() *MemNetwork {
	idle := make(chan struct{})
	close(idle)
	return &MemNetwork{
		nodes:  make(map[string]*MemTransport),
		cut:    make(map[[2]string]bool),
		dropTo: make(map[string]bool),
		idle:   idle,
	}
}

// Join attaches node to the network with handler h (nil discards what arrives). Joining with the
// ID of a live node closes the old transport first, which is how tests restart a node.
func (n *MemNetwork) Join(node string, h Handler) Transport {
	if h == nil {
		h = func(*heartbeatpb.Envelope) {}
	}
	n.mu.Lock()
	old := n.nodes[node]
	n.mu.Unlock()
	if old != nil {
		old.Close()
	}
	counters, _ := newCounters(node, nil) // no registerer: cannot fail
	t := &MemTransport{
		net: n, id: node, handler: h, counters: counters,
		queue: envQueue{limit: DefaultQueueSize},
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	n.mu.Lock()
	n.nodes[node] = t
	n.mu.Unlock()
	t.wg.Add(1)
	go t.run()
	return t
}

// SetPartition cuts (cut = true) or heals the link between a and b, both ways.
func (n *MemNetwork) SetPartition(a, b string, cut bool) {
	if b < a {
		a, b = b, a
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if cut {
		n.cut[[2]string{a, b}] = true
	} else {
		delete(n.cut, [2]string{a, b})
	}
}

// SetDropTo makes the network drop (drop = true) or deliver everything sent to node.
func (n *MemNetwork) SetDropTo(node string, drop bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if drop {
		n.dropTo[node] = true
	} else {
		delete(n.dropTo, node)
	}
}

// HealAll removes every partition and drop.
func (n *MemNetwork) HealAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
	clear(n.dropTo)
}

// WaitIdle blocks until no envelope is queued or being handled anywhere in the network (handlers
// that send keep it busy), or ctx ends. It lets tests wait for delivery without sleeping.
func (n *MemNetwork) WaitIdle(ctx context.Context) error {
	n.mu.Lock()
	idle := n.idle
	n.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// route hands a copy of env to its receiver, or says why it cannot.
func (n *MemNetwork) route(from string, env *heartbeatpb.Envelope) (dropReason, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	dst := n.nodes[env.To]
	if dst == nil {
		return dropNoPeer, false
	}
	a, b := from, env.To
	if b < a {
		a, b = b, a
	}
	if from != env.To && (n.cut[[2]string{a, b}] || n.dropTo[env.To]) {
		return dropFault, false
	}
	cp, err := cloneEnvelope(env)
	if err != nil {
		return dropInvalid, false
	}
	if !dst.enqueue(cp) {
		return dropQueueFull, false
	}
	if n.pending == 0 {
		n.idle = make(chan struct{})
	}
	n.pending++
	return 0, true
}

// settled records that k envelopes were handled or thrown away.
func (n *MemNetwork) settled(k int) {
	if k == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pending -= k
	if n.pending < 0 {
		panic("messaging: mem network pending count below zero")
	}
	if n.pending == 0 {
		close(n.idle)
	}
}

func (n *MemNetwork) leave(t *MemTransport) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes[t.id] == t {
		delete(n.nodes, t.id)
	}
}

// cloneEnvelope copies env through the codec, as the network would.
func cloneEnvelope(env *heartbeatpb.Envelope) (*heartbeatpb.Envelope, error) {
	data, err := env.Marshal()
	if err != nil {
		return nil, err
	}
	cp := &heartbeatpb.Envelope{}
	if err := safeUnmarshal(data, cp); err != nil {
		return nil, err
	}
	return cp, nil
}

// MemTransport is one node on a MemNetwork.
type MemTransport struct {
	net      *MemNetwork
	id       string
	handler  Handler
	counters *counters
	wake     chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex
	queue  envQueue
	closed bool
	once   sync.Once
}

var _ Transport = (*MemTransport)(nil)

// Send routes env through the network; see Transport.
func (t *MemTransport) Send(env *heartbeatpb.Envelope) {
	switch {
	case env == nil:
		t.counters.addDropped("", dropInvalid, 1)
		return
	case env.From != t.id:
		t.counters.addDropped(env.To, dropInvalid, 1)
		return
	}
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		t.counters.addDropped(env.To, dropClosed, 1)
		return
	}
	if reason, ok := t.net.route(t.id, env); !ok {
		t.counters.addDropped(env.To, reason, 1)
		return
	}
	t.counters.addSent(env.To, 1)
}

// SetPeers does nothing: on a MemNetwork every joined node is reachable.
func (t *MemTransport) SetPeers(map[string]string) {}

// Stats returns the node's totals.
func (t *MemTransport) Stats() Stats { return t.counters.stats() }

// Close leaves the network, drops what is still queued for this node and waits for its delivery
// goroutine. Idempotent.
func (t *MemTransport) Close() error {
	t.once.Do(func() {
		t.net.leave(t)
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		close(t.done)
		t.wg.Wait()
		t.mu.Lock()
		n := t.queue.reset()
		t.mu.Unlock()
		t.counters.addDropped(t.id, dropClosed, n)
		t.net.settled(n)
	})
	return nil
}

func (t *MemTransport) enqueue(env *heartbeatpb.Envelope) bool {
	t.mu.Lock()
	ok := !t.closed && t.queue.push(env)
	t.mu.Unlock()
	if ok {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	return ok
}

// run is the node's delivery goroutine.
func (t *MemTransport) run() {
	defer t.wg.Done()
	for {
		select {
		case <-t.wake:
		case <-t.done:
			return
		}
		for {
			select {
			case <-t.done:
				return
			default:
			}
			t.mu.Lock()
			batch, _ := t.queue.pop(DefaultMaxBatch, 0)
			t.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, env := range batch {
				t.counters.addReceived(env.From, []*heartbeatpb.Envelope{env})
				t.handler(env)
			}
			t.net.settled(len(batch))
		}
	}
}

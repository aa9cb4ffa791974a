package messaging

import (
	"context"
	"errors"
	"sync"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// errPeerClosed: the peer was removed or the transport closed while a stream was being attached.
var errPeerClosed = errors.New("messaging: peer closed")

// stream is one established Messenger stream to a peer, whichever side dialed it. Only the
// peer's sender goroutine calls send.
type stream struct {
	id     uint64 // transport-wide sequence number, for logs
	send   func(*heartbeatpb.Batch) error
	done   chan struct{} // closed when the stream is to end
	cancel context.CancelFunc
	once   sync.Once
}

func (s *stream) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func newStream(id uint64, cancel context.CancelFunc) *stream {
	return &stream{id: id, done: make(chan struct{}), cancel: cancel}
}

// close asks the stream to end: the dialer's context is cancelled, the acceptor's handler
// returns. Safe to call any number of times from any goroutine.
func (s *stream) close() {
	s.once.Do(func() {
		close(s.done)
		if s.cancel != nil {
			s.cancel()
		}
	})
}

// peer is one remote node (or this node itself): its queue, its current stream, and the context
// that bounds its sender goroutine and, on the dialing side, its dial loop.
type peer struct {
	id     string
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{} // capacity 1: "the queue or the stream changed"

	mu         sync.Mutex
	addr       string // "" while the peer is known only from its inbound stream
	registered bool   // listed by the last SetPeers; unregistered peers live as long as their stream
	closed     bool
	queue      envQueue
	full       bool // the last push failed; logged once per overflow, not once per envelope
	cur        *stream
	dialCancel context.CancelFunc // stops the dial loop of the current address

	// attachMu orders stream attachments. It is apart from mu because it is held across the
	// acceptor's header write, which may block, and Send must never wait for that.
	attachMu sync.Mutex

	// deliverMu serializes handler calls for this peer, so that the tail of a replaced stream and
	// the head of its replacement are never handled concurrently.
	deliverMu sync.Mutex
}

func newPeer(parent context.Context, id string, queueSize int) *peer {
	ctx, cancel := context.WithCancel(parent)
	return &peer{
		id: id, ctx: ctx, cancel: cancel,
		wake:  make(chan struct{}, 1),
		queue: envQueue{limit: queueSize},
	}
}

func (p *peer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// enqueue queues env. ok is false when the queue is full (or the peer closed); firstFull is true
// for the first failed push after the queue last had room, so the caller logs overflows once.
func (p *peer) enqueue(env *heartbeatpb.Envelope) (ok, firstFull bool) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false, false
	}
	ok = p.queue.push(env)
	if !ok {
		firstFull = !p.full
		p.full = true
	}
	p.mu.Unlock()
	if ok {
		p.signal()
	}
	return ok, firstFull
}

// next returns the current stream and, when there is one, the next batch from the queue. While
// no stream exists envelopes stay in the bounded queue, so a long disconnect drops the newest
// envelopes rather than growing memory.
func (p *peer) next(maxN, maxBytes int) (st *stream, batch []*heartbeatpb.Envelope, tooLarge int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.cur.ended() {
		return nil, nil, 0
	}
	batch, tooLarge = p.queue.pop(maxN, maxBytes)
	if p.queue.len() < p.queue.limit {
		p.full = false
	}
	return p.cur, batch, tooLarge
}

// current is the stream to write on, nil when there is none or it was asked to end.
func (p *peer) current() *stream {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil && p.cur.ended() {
		return nil
	}
	return p.cur
}

// attach makes st the peer's stream, closing the one it replaces: a newer stream for a pair
// always wins, which resolves restarts and dial races without coordination. accept, when not nil,
// runs first (the acceptor answers the dialer there); attaches are serialized around it, so the
// stream whose dialer heard "accepted" last is the one that stays current.
func (p *peer) attach(st *stream, accept func() error) error {
	p.attachMu.Lock()
	defer p.attachMu.Unlock()
	if accept != nil {
		if err := accept(); err != nil {
			st.close()
			return err
		}
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		st.close()
		return errPeerClosed
	}
	old := p.cur
	p.cur = st
	p.mu.Unlock()
	if old != nil {
		old.close()
	}
	p.signal()
	return nil
}

// detach closes st and forgets it if it is still the current stream. It reports whether the
// peer is left without any stream.
func (p *peer) detach(st *stream) (idle bool) {
	p.mu.Lock()
	if p.cur == st {
		p.cur = nil
	}
	idle = p.cur == nil
	p.mu.Unlock()
	st.close()
	return idle
}

// restart stops the dial loop and closes the current stream, keeping the queue: used when the
// peer's address changes.
func (p *peer) restart() {
	p.mu.Lock()
	dialCancel := p.dialCancel
	p.dialCancel = nil
	cur := p.cur
	p.cur = nil
	p.mu.Unlock()
	if dialCancel != nil {
		dialCancel()
	}
	if cur != nil {
		cur.close()
	}
}

// close ends the peer for good: stops its goroutines and streams and returns how many queued
// envelopes were thrown away.
func (p *peer) close() (dropped int) {
	p.mu.Lock()
	p.closed = true
	cur := p.cur
	p.cur = nil
	dropped = p.queue.reset()
	dialCancel := p.dialCancel
	p.dialCancel = nil
	p.mu.Unlock()
	p.cancel()
	if dialCancel != nil {
		dialCancel()
	}
	if cur != nil {
		cur.close()
	}
	return dropped
}

func (p *peer) snapshot() PeerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PeerStats{ID: p.id, Addr: p.addr, Connected: p.cur != nil, Queued: p.queue.len()}
}

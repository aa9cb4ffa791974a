package server

import "sync"

// latest holds the newest value of something that changes (the node set, a changefeed's info)
// and wakes every subscribed loop when it changes. Loops only ever need the newest value, so
// intermediate values are not queued: a slow loop cannot fall behind.
type latest[T any] struct {
	mu      sync.Mutex
	v       T
	version uint64
	subs    map[chan struct{}]struct{}
}

func newLatest[T any](v T) *latest[T] {
	return &latest[T]{v: v, subs: map[chan struct{}]struct{}{}}
}

// Set stores v and signals every subscriber.
func (l *latest[T]) Set(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.v = v
	l.version++
	for ch := range l.subs {
		select {
		case ch <- struct{}{}:
		default: // a signal is already pending; one receive covers both
		}
	}
}

// Get returns the newest value and its version (bumped by every Set).
func (l *latest[T]) Get() (T, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.v, l.version
}

// Subscribe returns a channel signalled after each Set, and the function that ends the
// subscription.
func (l *latest[T]) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	l.subs[ch] = struct{}{}
	l.mu.Unlock()
	return ch, func() {
		l.mu.Lock()
		delete(l.subs, ch)
		l.mu.Unlock()
	}
}

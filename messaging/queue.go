package messaging

import "github.com/tidemark/tidemark/heartbeatpb"

// batchOverhead is a generous bound on what framing one envelope inside a Batch adds (a tag and
// a length varint), so that a batch cut by size stays under the gRPC message limit.
const batchOverhead = 16

// envQueue is a bounded FIFO of envelopes for one peer. It is not safe for concurrent use; the
// peer's mutex guards it.
type envQueue struct {
	items []*heartbeatpb.Envelope
	head  int // items[head:] are queued
	limit int
}

func (q *envQueue) len() int { return len(q.items) - q.head }

// push appends env and reports false, leaving the queue unchanged, when the queue is full.
func (q *envQueue) push(env *heartbeatpb.Envelope) bool {
	if q.len() >= q.limit {
		return false
	}
	q.items = append(q.items, env)
	return true
}

// pop takes up to maxN envelopes whose encoded size together stays under maxBytes (always at
// least one that fits); maxBytes <= 0 means no size limit. Envelopes that could never fit in a message on their own are removed and
// counted in tooLarge, since retrying them can only fail again.
func (q *envQueue) pop(maxN, maxBytes int) (batch []*heartbeatpb.Envelope, tooLarge int) {
	size := 0
	for q.len() > 0 && len(batch) < maxN {
		env := q.items[q.head]
		if maxBytes <= 0 {
			q.drop()
			batch = append(batch, env)
			continue
		}
		n := env.Size() + batchOverhead
		if n > maxBytes {
			q.drop()
			tooLarge++
			continue
		}
		if len(batch) > 0 && size+n > maxBytes {
			break
		}
		q.drop()
		batch = append(batch, env)
		size += n
	}
	q.compact()
	return batch, tooLarge
}

// drop removes the head; the slot is cleared so the envelope can be collected.
func (q *envQueue) drop() {
	q.items[q.head] = nil
	q.head++
}

// compact reuses the slice's front once it is consumed, so a queue that is drained as fast as it
// is filled does not grow without bound.
func (q *envQueue) compact() {
	switch {
	case q.head == len(q.items):
		q.items = q.items[:0]
		q.head = 0
	case q.head > 0 && q.head >= cap(q.items)/2:
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
}

// reset empties the queue and returns how many envelopes it held.
func (q *envQueue) reset() int {
	n := q.len()
	q.items = nil
	q.head = 0
	return n
}

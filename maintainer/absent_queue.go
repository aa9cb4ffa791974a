package maintainer

// absentQueue is a FIFO of spans to place; entries whose span left the absent state meanwhile
// are skipped when popped. in marks the spans that have an entry, so a span is queued once.
type absentQueue struct {
	ids  []spanID
	head int
	in   []bool
}

func (q *absentQueue) grow(n int) {
	for len(q.in) < n {
		q.in = append(q.in, false)
	}
}

func (q *absentQueue) push(id spanID) {
	if q.in[id] {
		return
	}
	q.in[id] = true
	q.ids = append(q.ids, id)
}

// pop returns up to n queued spans that keep accepts, oldest first.
func (q *absentQueue) pop(n int, keep func(spanID) bool) []spanID {
	var out []spanID
	for q.head < len(q.ids) && len(out) < n {
		id := q.ids[q.head]
		q.head++
		q.in[id] = false
		if keep(id) {
			out = append(out, id)
		}
	}
	// Compact once the consumed prefix dominates, so the queue does not grow without bound.
	if q.head > 1024 && q.head*2 > len(q.ids) {
		q.ids = append(q.ids[:0], q.ids[q.head:]...)
		q.head = 0
	}
	return out
}

package messaging

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

func TestQueueBoundsBatchesAndCompacts(t *testing.T) {
	q := envQueue{limit: 5}
	for seq := uint64(1); seq <= 5; seq++ {
		if !q.push(testEnv("a", "b", seq)) {
			t.Fatalf("push %d refused", seq)
		}
	}
	if q.push(testEnv("a", "b", 6)) || q.len() != 5 {
		t.Fatalf("full queue took more: len %d", q.len())
	}
	batch, tooLarge := q.pop(2, 0)
	if len(batch) != 2 || tooLarge != 0 || batch[0].Seq != 1 || batch[1].Seq != 2 {
		t.Fatalf("pop: %v", batch)
	}
	// Room again after popping, and FIFO order holds across the compaction.
	if !q.push(testEnv("a", "b", 7)) {
		t.Fatal("push after pop refused")
	}
	batch, _ = q.pop(100, 0)
	var seqs []uint64
	for _, env := range batch {
		seqs = append(seqs, env.Seq)
	}
	if len(seqs) != 4 || seqs[0] != 3 || seqs[3] != 7 || q.len() != 0 {
		t.Fatalf("seqs %v, left %d", seqs, q.len())
	}
}

func TestQueuePopCutsBySize(t *testing.T) {
	big := func(seq uint64, n int) *heartbeatpb.Envelope {
		env := testEnv("a", "b", seq)
		env.Changefeed = strings.Repeat("x", n)
		return env
	}
	q := envQueue{limit: 10}
	q.push(big(1, 400))
	q.push(big(2, 5000)) // can never fit in 1000 bytes
	q.push(big(3, 400))
	q.push(big(4, 400))
	batch, tooLarge := q.pop(10, 1000)
	if tooLarge != 1 || len(batch) != 2 || batch[0].Seq != 1 || batch[1].Seq != 3 {
		t.Fatalf("batch %d envelopes, tooLarge %d", len(batch), tooLarge)
	}
	batch, _ = q.pop(10, 1000)
	if len(batch) != 1 || batch[0].Seq != 4 {
		t.Fatalf("second batch %v", batch)
	}
	if n := q.reset(); n != 0 {
		t.Fatalf("reset of an empty queue dropped %d", n)
	}
}

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	b := &backoff{min: 50 * time.Millisecond, max: 3 * time.Second, rnd: rand.New(rand.NewPCG(7, 7))}
	ceil := b.min
	for i := 0; i < 20; i++ {
		d := b.next()
		if d < ceil/2 || d > ceil {
			t.Fatalf("attempt %d: %v outside [%v, %v]", i, d, ceil/2, ceil)
		}
		if ceil < b.max/2 {
			ceil *= 2
		} else {
			ceil = b.max // doubling from here would overshoot; the cap is reached
		}
	}
	b.reset()
	if d := b.next(); d > b.min {
		t.Fatalf("after reset: %v", d)
	}
}

package server

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/etcdutil"
)

// fakePublish records the checkpoints of the statuses it is given and blocks each write until
// the test releases it, as a slow raft commit would.
type fakePublish struct {
	mu      sync.Mutex
	written []uint64
	started chan uint64
	release chan error
}

func newFakePublish() *fakePublish {
	return &fakePublish{started: make(chan uint64, 16), release: make(chan error)}
}

func (f *fakePublish) publish(ctx context.Context, st etcdutil.ChangefeedStatus) error {
	f.started <- st.CheckpointTs
	select {
	case err := <-f.release:
		if err == nil {
			f.mu.Lock()
			f.written = append(f.written, st.CheckpointTs)
			f.mu.Unlock()
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakePublish) writes() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint64(nil), f.written...)
}

func expectStart(t *testing.T, f *fakePublish, want uint64) {
	t.Helper()
	select {
	case got := <-f.started:
		if got != want {
			t.Fatalf("a write of checkpoint %d started, want %d", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no write of checkpoint %d started", want)
	}
}

// TestStatusWriterDoesNotHoldTheLoop: while a write is in flight, offers return at once and
// collapse into one write of the newest status; nothing offered last is lost.
func TestStatusWriterDoesNotHoldTheLoop(t *testing.T) {
	f := newFakePublish()
	w := newStatusWriter(f.publish, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); <-w.stopped() }()
	go w.run(ctx)

	if err := w.offer(etcdutil.ChangefeedStatus{CheckpointTs: 1}); err != nil {
		t.Fatal(err)
	}
	expectStart(t, f, 1)
	offered := make(chan struct{})
	go func() {
		for cp := uint64(2); cp <= 4; cp++ {
			_ = w.offer(etcdutil.ChangefeedStatus{CheckpointTs: cp})
		}
		close(offered)
	}()
	select {
	case <-offered:
	case <-time.After(5 * time.Second):
		t.Fatal("offers waited for the write in flight: the loop would be held by etcd")
	}
	f.release <- nil // 1 written
	expectStart(t, f, 4)
	f.release <- nil
	deadline := time.Now().Add(5 * time.Second)
	for len(f.writes()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := f.writes(); len(got) != 2 || got[0] != 1 || got[1] != 4 {
		t.Fatalf("written %v, want [1 4]: the first status, then only the newest of those offered meanwhile", got)
	}
	select {
	case cp := <-f.started:
		t.Fatalf("a write of checkpoint %d started with nothing offered", cp)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestStatusWriterStopsWhenTheTermIsOver: a write etcd refuses as not the leader ends the
// writer, and the loop learns it from stopped and offer; another failure is only logged and
// the next offer is written.
func TestStatusWriterStopsWhenTheTermIsOver(t *testing.T) {
	f := newFakePublish()
	w := newStatusWriter(f.publish, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx)

	_ = w.offer(etcdutil.ChangefeedStatus{CheckpointTs: 1})
	expectStart(t, f, 1)
	f.release <- errors.New("etcdserver: request timed out")
	_ = w.offer(etcdutil.ChangefeedStatus{CheckpointTs: 2})
	expectStart(t, f, 2)
	f.release <- nil
	_ = w.offer(etcdutil.ChangefeedStatus{CheckpointTs: 3})
	expectStart(t, f, 3)
	f.release <- etcdutil.ErrNotLeader
	select {
	case <-w.stopped():
	case <-time.After(5 * time.Second):
		t.Fatal("the writer went on after etcd said the term is over")
	}
	if err := w.offer(etcdutil.ChangefeedStatus{CheckpointTs: 4}); !errors.Is(err, etcdutil.ErrNotLeader) {
		t.Fatalf("offer after the term ended: %v, want ErrNotLeader", err)
	}
	if got := f.writes(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("written %v, want [2]", got)
	}
}

package runner

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// TestCheckpointWriterWritesOffTheCaller: a hand-over returns while the write is still going
// on, the result reaches the core only through Apply, a write that found the term over stops
// the writer with its error, and a hand-over the one-write rule excludes is refused, not
// queued or blocked on.
func TestCheckpointWriterWritesOffTheCaller(t *testing.T) {
	release := make(chan struct{})
	notLeader := errors.New("not leader")
	var wrote []uint64
	w := NewCheckpointWriter(func(cp uint64) (bool, error) {
		<-release
		wrote = append(wrote, cp)
		switch cp {
		case 8:
			return false, nil
		case 9:
			return false, notLeader
		}
		return true, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)

	handOver := func(cp uint64, want Written) {
		t.Helper()
		done := make(chan Written, 1)
		go func() { got, _ := w.PersistCheckpoint(cp); done <- got }()
		select {
		case got := <-done:
			if got != want {
				t.Fatalf("hand-over of %d: %v, want %v", cp, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("hand-over of %d waited for the write", cp)
		}
	}
	var r recorder
	next := func(want CheckpointResult) {
		t.Helper()
		release <- struct{}{}
		select {
		case got := <-w.Results():
			if got != want {
				t.Fatalf("result %+v, want %+v", got, want)
			}
			if err := got.Apply(&r); !errors.Is(err, want.Err) {
				t.Fatalf("Apply: %v, want %v", err, want.Err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no result for %d", want.Checkpoint)
		}
	}
	handOver(7, Pending)
	for len(w.asks) > 0 { // the writer takes 7 and blocks in the write
		time.Sleep(time.Millisecond)
	}
	handOver(8, Pending)       // waits in the slot
	handOver(99, NotPersisted) // slot full: refused at once
	next(CheckpointResult{Checkpoint: 7, Persisted: true})
	next(CheckpointResult{Checkpoint: 8})
	if want := []string{"persisted 7", "not-persisted"}; !reflect.DeepEqual(r.log, want) {
		t.Fatalf("core saw %q, want %q", r.log, want)
	}
	handOver(9, Pending)
	next(CheckpointResult{Checkpoint: 9, Err: notLeader})
	select {
	case <-w.Stopped():
	case <-time.After(5 * time.Second):
		t.Fatal("the writer went on after the term was over")
	}
	if want := []uint64{7, 8, 9}; !reflect.DeepEqual(wrote, want) {
		t.Fatalf("wrote %v, want %v", wrote, want)
	}
	if want := []string{"persisted 7", "not-persisted"}; !reflect.DeepEqual(r.log, want) {
		t.Fatalf("a failed term reached the core as a result: %q", r.log)
	}
}

// TestCheckpointWriterStopsWithItsContext: an ended term's writer returns even mid-delivery.
func TestCheckpointWriterStopsWithItsContext(t *testing.T) {
	w := NewCheckpointWriter(func(uint64) (bool, error) { return true, nil })
	ctx, cancel := context.WithCancel(context.Background())
	go w.Run(ctx)
	if got, _ := w.PersistCheckpoint(1); got != Pending {
		t.Fatalf("hand-over: %v", got)
	}
	for len(w.asks) > 0 {
		time.Sleep(time.Millisecond)
	}
	if got, _ := w.PersistCheckpoint(2); got != Pending { // nobody reads results: the writer waits to deliver 1
		t.Fatalf("hand-over: %v", got)
	}
	cancel()
	select {
	case <-w.Stopped():
	case <-time.After(5 * time.Second):
		t.Fatal("writer did not stop with its context")
	}
}

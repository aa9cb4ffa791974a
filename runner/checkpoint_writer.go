package runner

import "context"

// CheckpointWriter persists a maintainer's checkpoints from its own goroutine, so the loop that
// drives the core never waits on etcd for one. A write is a guarded read and a compare-and-swap,
// a raft commit; done in the loop (up to once a tick) it held whatever arrived meanwhile, among
// it the Stopped report a make-before-break Move's commit waits for: 9 ms of a 14 ms move pause
// in a traced run. The core keeps one write in flight (Maintainer.Ready asks for the next only
// once the last is answered), so one slot each way is enough and nothing queues.
type CheckpointWriter struct {
	persist func(cp uint64) (bool, error)
	asks    chan uint64
	results chan CheckpointResult
	done    chan struct{}
}

// CheckpointResult is how one write came out. Err ends the term (leadership lost).
type CheckpointResult struct {
	Checkpoint uint64
	Persisted  bool
	Err        error
}

// Apply reports r to core; it returns r.Err, which the caller ends the term on.
func (r CheckpointResult) Apply(core MaintainerCore) error {
	switch {
	case r.Err != nil:
		return r.Err
	case r.Persisted:
		core.CheckpointPersisted(r.Checkpoint)
	default:
		core.CheckpointNotPersisted()
	}
	return nil
}

// NewCheckpointWriter returns a writer that calls persist (a guarded forward-only write: true
// when etcd holds cp, false for a failed write worth asking again, an error when the term is
// over) for each checkpoint handed to it. Run starts it.
func NewCheckpointWriter(persist func(cp uint64) (bool, error)) *CheckpointWriter {
	return &CheckpointWriter{persist: persist, asks: make(chan uint64, 1),
		results: make(chan CheckpointResult, 1), done: make(chan struct{})}
}

// Run writes what is handed over until ctx ends or a write ends the term.
func (w *CheckpointWriter) Run(ctx context.Context) {
	defer close(w.done)
	for {
		var cp uint64
		select {
		case <-ctx.Done():
			return
		case cp = <-w.asks:
		}
		ok, err := w.persist(cp)
		select {
		case w.results <- CheckpointResult{Checkpoint: cp, Persisted: ok, Err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// Results delivers each write's outcome, for the loop to Apply.
func (w *CheckpointWriter) Results() <-chan CheckpointResult { return w.results }

// Stopped is closed once Run has returned.
func (w *CheckpointWriter) Stopped() <-chan struct{} { return w.done }

// PersistCheckpoint hands cp to the writer and returns Pending at once: the store side of
// runner.Maintainer for a loop that writes off itself. A hand-over while the writer has not
// taken the last one (which the core's one-write rule excludes) is refused as not persisted,
// so the core asks again later and nothing blocks the loop.
func (w *CheckpointWriter) PersistCheckpoint(cp uint64) (Written, error) {
	select {
	case w.asks <- cp:
		return Pending, nil
	default:
		return NotPersisted, nil
	}
}

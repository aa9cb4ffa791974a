package dispatcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/pingcap/failpoint"
	"go.uber.org/zap"
)

// ErrSinkUnavailable is wrapped by every error of a sink that is waiting to retry a failed
// write: Append refuses records until a Flush succeeds again.
var ErrSinkUnavailable = errors.New("dispatcher: sink unavailable")

// Retry backoff of a failing file sink: the first retry after MinSinkBackoff, doubling up to
// MaxSinkBackoff, so a node resumes within about a second of space coming back.
const (
	MinSinkBackoff = 100 * time.Millisecond
	MaxSinkBackoff = time.Second
)

// maxPending bounds the records a sink holds in memory (accepted, not yet durable). Beyond it
// Append refuses, which holds the dispatchers' checkpoints instead of growing without end.
const maxPending = 64 << 20

// writeThrough is the pending size at which Append writes out without waiting for Flush (when
// no fsync is asked for), as the buffered writer it replaces did.
const writeThrough = 64 << 10

// SinkFile is what a FileSink writes through; *os.File is one. WithOpener replaces it in tests
// that need a disk that fills up.
type SinkFile interface {
	WriteAt(b []byte, off int64) (int, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

// FileSinkOption tunes NewFileSink.
type FileSinkOption func(*FileSink)

// WithFsync makes Flush fsync the file after writing, so records survive a machine crash, not
// just a process crash.
func WithFsync() FileSinkOption { return func(s *FileSink) { s.fsync = true } }

// WithSinkLogger logs the sink's failures, recoveries and torn-tail repairs to log.
func WithSinkLogger(log *zap.Logger) FileSinkOption { return func(s *FileSink) { s.log = log } }

// WithSinkClock replaces the wall clock the retry backoff is measured with.
func WithSinkClock(now func() time.Time) FileSinkOption { return func(s *FileSink) { s.now = now } }

// WithErrorHook calls hook with every failed write or fsync (not with refusals while backing
// off), for an error counter.
func WithErrorHook(hook func(error)) FileSinkOption { return func(s *FileSink) { s.onError = hook } }

// WithOpener replaces how the sink (re)opens its file for writing after the first open.
func WithOpener(open func(path string) (SinkFile, error)) FileSinkOption {
	return func(s *FileSink) { s.open = open }
}

// FileSink appends records as JSON lines to a file. Accepted records wait in memory until Flush
// (or a large batch) writes them at the last durable offset; nothing is promised before Flush
// returns nil, which is why the dispatcher manager flushes before it reports a checkpoint.
//
// A failed write does not stick: the file is cut back to the last durable offset (no torn
// line), the records stay pending, and a later Flush retries on a freshly opened file once the
// backoff has passed. Safe for concurrent use because one node may share a sink between
// changefeeds.
type FileSink struct {
	mu      sync.Mutex
	path    string
	f       SinkFile // nil after a failure, until the next retry opens a fresh one
	durable int64    // every byte below is a whole record, written (and synced with fsync)
	pending []byte   // accepted records not yet durable, whole lines
	fsync   bool
	closed  bool
	fail    sinkFailure
	log     *zap.Logger
	now     func() time.Time
	onError func(error)
	open    func(path string) (SinkFile, error)
}

// sinkFailure is the sink's retry state; the zero value means healthy.
type sinkFailure struct {
	cause    error // the latest failed write's error
	since    time.Time
	attempts int
	next     time.Time // no retry before this
}

// NewFileSink opens (creating or appending to) the JSON-lines file at path. A torn last line
// that an earlier crash left is cut off, with a log line, so new records start on a line.
func NewFileSink(path string, opts ...FileSinkOption) (*FileSink, error) {
	s := &FileSink{path: path, log: zap.NewNop(), now: time.Now, onError: func(error) {}, open: openSinkFile}
	for _, o := range opts {
		o(s)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: open sink %s: %w", path, err)
	}
	size, torn, err := cutTornTail(f)
	if err = errors.Join(err, f.Close()); err != nil {
		return nil, fmt.Errorf("dispatcher: open sink %s: %w", path, err)
	}
	if torn > 0 {
		s.log.Warn("sink file ended in a torn line; cut it off", zap.String("path", path),
			zap.Int64("kept-bytes", size), zap.Int64("cut-bytes", torn))
	}
	// The first write opens the file for writing the same way every retry does.
	s.durable = size
	return s, nil
}

func openSinkFile(path string) (SinkFile, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
}

// cutTornTail truncates f after its last newline and returns the size kept and the bytes cut.
func cutTornTail(f *os.File) (size, cut int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	end := st.Size()
	buf := make([]byte, 4096)
	for pos := end; pos > 0; {
		n := int64(len(buf))
		if pos < n {
			n = pos
		}
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return 0, 0, err
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				keep := pos + i + 1
				if keep < end {
					err = f.Truncate(keep)
				}
				return keep, end - keep, err
			}
		}
	}
	if end > 0 {
		err = f.Truncate(0)
	}
	return 0, end, err
}

// Append accepts one record, or refuses it while the sink is failing or too much is pending.
func (s *FileSink) Append(r Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("dispatcher: encode record: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("dispatcher: sink %s: %w", s.path, os.ErrClosed)
	}
	if s.fail.cause != nil {
		return s.unavailable()
	}
	if len(s.pending)+len(line)+1 > maxPending {
		return fmt.Errorf("%w: sink %s: %d bytes wait to be flushed", ErrSinkUnavailable, s.path, len(s.pending))
	}
	s.pending = append(append(s.pending, line...), '\n')
	if !s.fsync && len(s.pending) >= writeThrough {
		// The record is accepted either way: a failed write keeps it pending for the retry,
		// and the next Flush reports the failure.
		_ = s.writeOut()
	}
	return nil
}

// Flush writes every pending record at the durable offset, and fsyncs when WithFsync was given.
// While a failed write's backoff lasts it returns at once with ErrSinkUnavailable.
func (s *FileSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("dispatcher: sink %s: %w", s.path, os.ErrClosed)
	}
	return s.flushLocked()
}

func (s *FileSink) flushLocked() error {
	if s.fail.cause != nil && s.now().Before(s.fail.next) {
		return s.unavailable()
	}
	if err := s.writeOut(); err != nil {
		return fmt.Errorf("dispatcher: flush sink %s: %w", s.path, err)
	}
	return nil
}

func (s *FileSink) unavailable() error {
	return fmt.Errorf("%w: sink %s failing since %s (%d attempts, next retry in %s): %w", ErrSinkUnavailable,
		s.path, s.fail.since.UTC().Format(time.RFC3339), s.fail.attempts,
		max(0, s.fail.next.Sub(s.now())).Round(time.Millisecond), s.fail.cause)
}

// writeOut writes the pending records (on a fresh file after a failure) and fsyncs them when
// asked. On success they are durable and a failure is over; on failure the file is cut back to
// the durable offset and the retry is scheduled.
func (s *FileSink) writeOut() error {
	if len(s.pending) == 0 && s.fail.cause == nil {
		return nil
	}
	err := s.write()
	if err != nil {
		s.failed(err)
		return err
	}
	if s.fail.cause != nil {
		s.log.Info("sink recovered", zap.String("path", s.path), zap.Time("failing-since", s.fail.since),
			zap.Int("attempts", s.fail.attempts), zap.Duration("down", s.now().Sub(s.fail.since)))
		s.fail = sinkFailure{}
	}
	s.durable += int64(len(s.pending))
	s.pending = s.pending[:0]
	return nil
}

func (s *FileSink) write() error {
	if s.f == nil {
		f, err := s.open(s.path)
		if err != nil {
			return fmt.Errorf("reopen: %w", err)
		}
		s.f = f
		// Whatever a torn write left beyond the durable offset goes before anything new.
		if err := f.Truncate(s.durable); err != nil {
			return fmt.Errorf("truncate to %d: %w", s.durable, err)
		}
	}
	var injected error
	failpoint.Inject("sink-enospc", func(v failpoint.Value) {
		if mode, _ := v.(string); mode == "torn" && len(s.pending) > 1 {
			_, _ = s.f.WriteAt(s.pending[:len(s.pending)/2], s.durable)
		}
		injected = &os.PathError{Op: "write", Path: s.path, Err: syscall.ENOSPC}
	})
	if injected != nil {
		return injected
	}
	if _, err := s.f.WriteAt(s.pending, s.durable); err != nil {
		return err
	}
	if s.fsync {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("fsync: %w", err)
		}
	}
	return nil
}

// failed records a failed write: the torn part is cut off (best effort: the reopen on retry
// cuts it again), the file is dropped so the retry starts fresh, and the backoff grows.
func (s *FileSink) failed(err error) {
	now := s.now()
	if s.f != nil {
		if terr := s.f.Truncate(s.durable); terr != nil {
			s.log.Debug("cutting a failed write back failed; the retry cuts it", zap.Error(terr))
		}
		_ = s.f.Close()
		s.f = nil
	}
	if s.fail.cause == nil {
		s.fail.since = now
		s.log.Warn("sink write failed; records held, retrying with backoff", zap.String("path", s.path),
			zap.Int("pending-bytes", len(s.pending)), zap.Error(err))
	}
	s.fail.cause = err
	s.fail.attempts++
	backoff := MinSinkBackoff << min(s.fail.attempts-1, 10)
	s.fail.next = now.Add(min(backoff, MaxSinkBackoff))
	s.onError(err)
}

// Close flushes (one attempt, ignoring the backoff) and closes the file. Closing twice is
// harmless.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.fail.next = time.Time{}
	err := s.flushLocked()
	if s.f != nil {
		err = errors.Join(err, s.f.Close())
	}
	return err
}

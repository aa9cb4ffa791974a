package dispatcher

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// smallDisk is a file on a disk with room for limit bytes of it: a write past the limit writes
// what fits (a torn line) and fails with ENOSPC, as a full tmpfs does. syncErr fails fsyncs.
type smallDisk struct {
	limit   int64
	syncErr error
	opens   int
}

type smallFile struct {
	*os.File
	d *smallDisk
}

func (d *smallDisk) open(path string) (SinkFile, error) {
	d.opens++
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	return smallFile{f, d}, err
}

func (f smallFile) WriteAt(b []byte, off int64) (int, error) {
	if room := f.d.limit - off; int64(len(b)) > room {
		n, _ := f.File.WriteAt(b[:max(room, 0)], off)
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.WriteAt(b, off)
}

func (f smallFile) Sync() error {
	if f.d.syncErr != nil {
		return f.d.syncErr
	}
	return f.File.Sync()
}

type manualClock struct{ t time.Time }

func (c *manualClock) now() time.Time { return c.t }

// wholeLines fails unless the file is empty or ends in a newline (no torn record).
func wholeLines(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("sink file ends in a torn line: %q", b[max(0, len(b)-40):])
	}
	return b
}

func TestFileSinkRecoversFromFullDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sink.jsonl")
	clock := &manualClock{t: time.Unix(1000, 0)}
	disk := &smallDisk{limit: 1 << 20}
	var hooked int
	s, err := NewFileSink(path, WithOpener(disk.open), WithSinkClock(clock.now), WithErrorHook(func(error) { hooked++ }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := errors.Join(s.Append(testRecord(1, 2)), s.Flush()); err != nil {
		t.Fatal(err)
	}
	disk.limit = int64(len(wholeLines(t, path))) + 30 // the next record fits only in part
	if err := s.Append(testRecord(2, 3)); err != nil {
		t.Fatalf("append before the failure shows: %v", err)
	}
	err = s.Flush()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("flush on a full disk: %v, want ENOSPC", err)
	}
	if got := wholeLines(t, path); bytes.Count(got, []byte("\n")) != 1 {
		t.Fatalf("after the failed write the file holds %q, want the first record only", got)
	}
	// Failing: new records are refused with the cause, and Flush does no I/O until the backoff.
	err = s.Append(testRecord(3, 4))
	if !errors.Is(err, ErrSinkUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append while failing: %v, want ErrSinkUnavailable wrapping ENOSPC", err)
	}
	opens := disk.opens
	clock.t = clock.t.Add(MinSinkBackoff / 2)
	if err := s.Flush(); !errors.Is(err, ErrSinkUnavailable) || disk.opens != opens {
		t.Fatalf("flush inside the backoff: %v, opens %d -> %d; want a refusal without I/O", err, opens, disk.opens)
	}
	// Still full at the retry: the backoff doubles.
	clock.t = clock.t.Add(MinSinkBackoff)
	if err := s.Flush(); !errors.Is(err, syscall.ENOSPC) || disk.opens != opens+1 {
		t.Fatalf("retry on a still-full disk: %v, opens %d", err, disk.opens-opens)
	}
	if hooked != 2 {
		t.Fatalf("error hook called %d times, want 2 (one per failed write)", hooked)
	}
	// Space returns: the next retry writes the held record once, on a fresh file.
	disk.limit = 1 << 20
	clock.t = clock.t.Add(2 * MinSinkBackoff)
	if err := s.Flush(); err != nil {
		t.Fatalf("flush after space returned: %v", err)
	}
	if err := errors.Join(s.Append(testRecord(3, 4)), s.Flush()); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	wholeLines(t, path)
	got, err := ReadRecords(path)
	want := []Record{testRecord(1, 2), testRecord(2, 3), testRecord(3, 4)}
	if err != nil || len(got) != len(want) {
		t.Fatalf("records %v, %v; want %v", got, err, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d = %v, want %v (no duplicate, no loss)", i, got[i], want[i])
		}
	}
}

func TestFileSinkRewritesAfterFailedFsync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sink.jsonl")
	clock := &manualClock{t: time.Unix(1000, 0)}
	disk := &smallDisk{limit: 1 << 20, syncErr: syscall.EIO}
	s, err := NewFileSink(path, WithFsync(), WithOpener(disk.open), WithSinkClock(clock.now))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Append(testRecord(1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("flush with a failing fsync: %v, want EIO", err)
	}
	disk.syncErr = nil
	clock.t = clock.t.Add(MaxSinkBackoff)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadRecords(path); err != nil || len(got) != 1 {
		t.Fatalf("records %v, %v; want the one record exactly once", got, err)
	}
}

func TestFileSinkBackoffIsBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sink.jsonl")
	clock := &manualClock{t: time.Unix(1000, 0)}
	disk := &smallDisk{limit: 0}
	s, err := NewFileSink(path, WithOpener(disk.open), WithSinkClock(clock.now))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.Append(testRecord(1, 2))
	for i := 0; i < 20; i++ {
		_ = s.Flush()
		clock.t = clock.t.Add(MaxSinkBackoff)
	}
	if disk.opens != 20 {
		t.Fatalf("%d write attempts over 20 max backoffs, want 20 (a retry at least every %s)", disk.opens, MaxSinkBackoff)
	}
}

func TestFileSinkCutsTornTailAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sink.jsonl")
	s, err := NewFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(s.Append(testRecord(1, 2)), s.Close()); err != nil {
		t.Fatal(err)
	}
	whole, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(append([]byte{}, whole...), whole[:25]...), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = NewFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(s.Append(testRecord(2, 3)), s.Close()); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRecords(path)
	if err != nil || len(got) != 2 || got[1] != testRecord(2, 3) {
		t.Fatalf("records %v, %v; want the torn tail gone and the new record on its own line", got, err)
	}
	// A file that is one torn line and nothing else is emptied.
	if err := os.WriteFile(path, whole[:10], 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err = NewFileSink(path); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("file %q, want it empty", b)
	}
}

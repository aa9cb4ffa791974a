package etcdcdc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/pingcap/failpoint"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/span"
)

// DefaultFileMaxBytes is the size beyond which a file sink starts its next file.
const DefaultFileMaxBytes = 64 << 20

// Record is one line of a file sink. Key and value are strings when they are valid UTF-8 and
// base64 in KeyB64 and ValueB64 otherwise, so a plain `cat` shows ordinary keys.
type Record struct {
	Key         string `json:"key,omitempty"`
	KeyB64      []byte `json:"key_b64,omitempty"`
	Value       string `json:"value,omitempty"`
	ValueB64    []byte `json:"value_b64,omitempty"`
	Op          string `json:"op"` // put or delete
	ModRevision int64  `json:"mod_revision"`
	Dispatcher  string `json:"dispatcher"`
	Span        string `json:"span"`
	Node        string `json:"node"`
	Changefeed  string `json:"changefeed"`
	// WrittenUnixNano is when the node handed the record's batch to the file (its wall clock,
	// Unix nanoseconds; every record of one write has the same). It measures replication
	// pauses and lag from the sink alone (tests/bench moves); checkers ignore it, and records
	// written before it existed have 0.
	WrittenUnixNano int64 `json:"written_unix_nano,omitempty"`
}

// Event turns the record back into the event it was written from.
func (r Record) Event() Event {
	e := Event{Key: []byte(r.Key), Value: []byte(r.Value), Delete: r.Op == "delete", Revision: r.ModRevision}
	if r.KeyB64 != nil {
		e.Key = r.KeyB64
	}
	if r.ValueB64 != nil {
		e.Value = r.ValueB64
	}
	return e
}

// FileSink appends records to <dir>/<changefeed>-<n>.jsonl, starting file n+1 beyond a size.
// A write is durable when it returns (with fsync when asked: a machine crash too). A failed
// write is cut back to the last whole line before it returns, so its outcome is never unknown.
type FileSink struct {
	mu       sync.Mutex
	dir, cf  string
	maxBytes int64
	fsync    bool
	seq      int
	f        *os.File
	size     int64 // durable bytes of the current file
	lastErr  error
	// failedSize is the size of the last failed write, probedAt when Err last retried it.
	failedSize int
	probedAt   time.Time
	// writeAt writes to the current file: (*os.File).WriteAt, replaced by tests that fill
	// the disk.
	writeAt func(f *os.File, b []byte, off int64) (int, error)
}

// NewFileSink opens the sink of changefeed cf under dir, continuing its newest file (cut back
// to its last whole line). maxBytes 0 means DefaultFileMaxBytes.
func NewFileSink(dir, cf string, maxBytes int64, fsync bool) (*FileSink, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultFileMaxBytes
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("etcdcdc: file sink: %w", err)
	}
	files, err := SinkFiles(dir, cf)
	if err != nil {
		return nil, err
	}
	s := &FileSink{dir: dir, cf: cf, maxBytes: maxBytes, fsync: fsync, seq: 1, writeAt: (*os.File).WriteAt}
	if len(files) > 0 {
		s.seq = fileSeq(files[len(files)-1])
	}
	if err := s.openCurrent(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *FileSink) path(seq int) string {
	return filepath.Join(s.dir, fmt.Sprintf("%s-%06d.jsonl", s.cf, seq))
}

// openCurrent opens file seq and cuts a torn last line an earlier crash left.
func (s *FileSink) openCurrent() error {
	f, err := os.OpenFile(s.path(s.seq), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("etcdcdc: file sink: %w", err)
	}
	data, err := os.ReadFile(s.path(s.seq))
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("etcdcdc: file sink: %w", err)
	}
	keep := int64(strings.LastIndexByte(string(data), '\n') + 1)
	if keep < int64(len(data)) {
		if err := f.Truncate(keep); err != nil {
			_ = f.Close()
			return fmt.Errorf("etcdcdc: file sink: cut torn line: %w", err)
		}
	}
	s.f, s.size = f, keep
	return nil
}

// Open returns the writer of one dispatcher.
func (s *FileSink) Open(o Owner) SpanWriter {
	return &fileWriter{s: s, o: o, id: dispatcher.FormatID(o.ID), span: span.String(o.Span)}
}

// probeEvery: how often Err retries a failed write's size while the failure stands.
const probeEvery = time.Second

// Err is the last write's failure, nil once a write succeeded again. While it stands, Err
// itself retries, at most once a probeEvery, a write of the failed one's size and cuts it off
// again: once every failing dispatcher stopped (its spans moved off a full disk) nothing else
// writes here, and the node must still learn that space returned, or it would stay unhealthy
// and never take spans again. The probe bytes hold no newline, so if a crash leaves them the
// reopen cuts them as a torn line.
func (s *FileSink) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr == nil || time.Since(s.probedAt) < probeEvery {
		return s.lastErr
	}
	s.probedAt = time.Now()
	probe := bytes.Repeat([]byte{' '}, max(s.failedSize, 1))
	if err := s.writeLocked(probe); err != nil {
		s.lastErr = err
		return err
	}
	s.size -= int64(len(probe))
	if err := s.f.Truncate(s.size); err != nil {
		_ = s.f.Close() // the reopen cuts the probe as a torn line
		s.f = nil
	}
	s.lastErr = nil
	return nil
}

// Close closes the current file.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// write appends whole lines at the durable size; on failure it cuts them off again.
func (s *FileSink) write(lines []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.writeLocked(lines)
	s.lastErr = err
	if err != nil {
		s.failedSize, s.probedAt = len(lines), time.Now()
	}
	return err
}

func (s *FileSink) writeLocked(lines []byte) error {
	if s.f == nil {
		if err := s.openCurrent(); err != nil {
			return err
		}
	}
	if s.size > 0 && s.size+int64(len(lines)) > s.maxBytes {
		if err := s.f.Close(); err != nil {
			return fmt.Errorf("etcdcdc: file sink: close full file: %w", err)
		}
		s.f = nil
		s.seq++
		if err := s.openCurrent(); err != nil {
			return err
		}
	}
	err := s.injectedENOSPC(lines)
	if err == nil {
		_, err = s.writeAt(s.f, lines, s.size)
	}
	if err == nil && s.fsync {
		err = s.f.Sync()
	}
	if err != nil {
		if terr := s.f.Truncate(s.size); terr != nil {
			// The torn tail stays until the reopen cuts it: drop the file so that happens.
			_ = s.f.Close()
			s.f = nil
		}
		return fmt.Errorf("%w: file %s: %w", dispatcher.ErrSinkUnavailable, s.path(s.seq), err)
	}
	s.size += int64(len(lines))
	return nil
}

// injectedENOSPC is the file-sink-enospc failpoint, a chaos fault: the write fails with ENOSPC
// as on a full disk, and with "torn" half of lines lands first (what fits, then the disk is
// full), so the cut back to the last whole line runs as it would for real.
func (s *FileSink) injectedENOSPC(lines []byte) error {
	var err error
	failpoint.Inject("file-sink-enospc", func(v failpoint.Value) {
		if mode, _ := v.(string); mode == "torn" && len(lines) > 1 {
			_, _ = s.f.WriteAt(lines[:len(lines)/2], s.size)
		}
		err = &os.PathError{Op: "write", Path: s.f.Name(), Err: syscall.ENOSPC}
	})
	return err
}

type fileWriter struct {
	s        *FileSink
	o        Owner
	id, span string
	buf      []byte
}

// Write appends one record per event.
func (w *fileWriter) Write(_ context.Context, events []Event, _ int64) error {
	w.buf = w.buf[:0]
	now := time.Now().UnixNano()
	for _, e := range events {
		r := Record{Op: "put", ModRevision: e.Revision, Dispatcher: w.id, Span: w.span, Node: w.o.Node, Changefeed: w.o.Changefeed,
			WrittenUnixNano: now}
		if e.Delete {
			r.Op = "delete"
		}
		if utf8.Valid(e.Key) {
			r.Key = string(e.Key)
		} else {
			r.KeyB64 = e.Key
		}
		if utf8.Valid(e.Value) {
			r.Value = string(e.Value)
		} else {
			r.ValueB64 = e.Value
		}
		line, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("etcdcdc: encode record: %w", err)
		}
		w.buf = append(append(w.buf, line...), '\n')
	}
	if len(w.buf) == 0 {
		return nil
	}
	return w.s.write(w.buf)
}

// Settle has nothing to do: a failed write was cut back before it returned.
func (w *fileWriter) Settle(context.Context) error { return nil }

// SinkFiles lists the files of changefeed cf's sink under dir, oldest first.
func SinkFiles(dir, cf string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, cf+"-[0-9]*.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("etcdcdc: list sink files: %w", err)
	}
	var out []string
	for _, m := range matches {
		if fileSeq(m) > 0 {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return fileSeq(out[i]) < fileSeq(out[j]) })
	return out, nil
}

// fileSeq is n of <cf>-<n>.jsonl, 0 when path is not such a file.
func fileSeq(path string) int {
	base := strings.TrimSuffix(filepath.Base(path), ".jsonl")
	i := strings.LastIndexByte(base, '-')
	if i < 0 {
		return 0
	}
	n, err := strconv.Atoi(base[i+1:])
	if err != nil || n < 1 {
		return 0
	}
	return n
}

// ReadFileSink reads every record of changefeed cf's sink under dir, in file order.
func ReadFileSink(dir, cf string) ([]Record, error) {
	files, err := SinkFiles(dir, cf)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("etcdcdc: read sink: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for line := 1; sc.Scan(); line++ {
			var r Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				_ = f.Close()
				return nil, fmt.Errorf("%w: %s line %d: %v", dispatcher.ErrInvalid, path, line, err)
			}
			out = append(out, r)
		}
		err = errors.Join(sc.Err(), f.Close())
		if err != nil {
			return nil, fmt.Errorf("etcdcdc: read sink %s: %w", path, err)
		}
	}
	return out, nil
}

package dispatcher

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// Record is one sink line: dispatcher Dispatcher on node Node processed the ts range (From, To]
// of the span [Start, End) (hex keys) of table Table in mode Mode, at wall time At (ms since the
// Unix epoch, the clock the dispatcher was polled with; 0 in files written before it existed).
type Record struct {
	Node       string `json:"node"`
	Changefeed string `json:"changefeed"`
	Dispatcher string `json:"dispatcher"`
	Table      int64  `json:"table"`
	Start      string `json:"start"`
	End        string `json:"end"`
	Mode       string `json:"mode"`
	From       uint64 `json:"from"`
	To         uint64 `json:"to"`
	At         int64  `json:"at_ms,omitempty"`
}

// Validate reports why r is not a well-formed record, or nil.
func (r Record) Validate() error {
	if _, err := ParseID(r.Dispatcher); err != nil {
		return err
	}
	if _, err := ParseMode(r.Mode); err != nil {
		return err
	}
	start, err1 := hex.DecodeString(r.Start)
	end, err2 := hex.DecodeString(r.End)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%w: record keys %q..%q are not hex", ErrInvalid, r.Start, r.End)
	}
	if bytes.Compare(start, end) >= 0 {
		return fmt.Errorf("%w: record span start %q not below end %q", ErrInvalid, r.Start, r.End)
	}
	if r.From >= r.To {
		return fmt.Errorf("%w: record range (%d, %d] is empty", ErrInvalid, r.From, r.To)
	}
	if r.At < 0 {
		return fmt.Errorf("%w: record wall time %d is negative", ErrInvalid, r.At)
	}
	return nil
}

// Sink receives the ranges dispatchers processed.
type Sink interface {
	Append(Record) error
	// Flush makes every appended record durable (as durable as the sink promises).
	Flush() error
	Close() error
}

// FileSinkOption tunes NewFileSink.
type FileSinkOption func(*FileSink)

// WithFsync makes Flush fsync the file after writing the buffer, so records survive a machine
// crash, not just a process crash.
func WithFsync() FileSinkOption { return func(s *FileSink) { s.fsync = true } }

// FileSink appends records as JSON lines to a file through a buffer; Flush writes the buffer out.
// Records appended but not flushed are lost in a crash, which is exactly why the dispatcher
// manager flushes before it reports a checkpoint. Safe for concurrent use because one node may
// share a sink between changefeeds.
type FileSink struct {
	mu     sync.Mutex
	path   string
	f      *os.File
	w      *bufio.Writer
	fsync  bool
	closed bool
}

// NewFileSink opens (creating or appending to) the JSON-lines file at path.
func NewFileSink(path string, opts ...FileSinkOption) (*FileSink, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: open sink %s: %w", path, err)
	}
	s := &FileSink{path: path, f: f, w: bufio.NewWriterSize(f, 64<<10)}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Append buffers one record.
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
	line = append(line, '\n')
	if _, err := s.w.Write(line); err != nil {
		return fmt.Errorf("dispatcher: sink %s: %w", s.path, err)
	}
	return nil
}

// Flush writes the buffer to the file, and fsyncs it when WithFsync was given.
func (s *FileSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("dispatcher: sink %s: %w", s.path, os.ErrClosed)
	}
	return s.flushLocked()
}

func (s *FileSink) flushLocked() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("dispatcher: flush sink %s: %w", s.path, err)
	}
	if s.fsync {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("dispatcher: fsync sink %s: %w", s.path, err)
		}
	}
	return nil
}

// Close flushes and closes the file. Closing twice is harmless.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return errors.Join(s.flushLocked(), s.f.Close())
}

// MemSink keeps records in memory, for tests. Flushed returns what a crash would leave behind.
type MemSink struct {
	mu      sync.Mutex
	records []Record
	flushed int
	closed  bool
}

// NewMemSink returns an empty in-memory sink.
func NewMemSink() *MemSink { return &MemSink{} }

// Append keeps r.
func (s *MemSink) Append(r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("dispatcher: mem sink: %w", os.ErrClosed)
	}
	s.records = append(s.records, r)
	return nil
}

// Flush marks every record so far as durable.
func (s *MemSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushed = len(s.records)
	return nil
}

// Close makes later appends fail.
func (s *MemSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Records returns a copy of every record appended.
func (s *MemSink) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record(nil), s.records...)
}

// Flushed returns a copy of the records made durable by Flush.
func (s *MemSink) Flushed() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record(nil), s.records[:s.flushed]...)
}

// ReadRecords parses a sink file written by FileSink.
func ReadRecords(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: read sink: %w", err)
	}
	defer f.Close()
	recs, err := DecodeRecords(f)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: sink %s: %w", path, err)
	}
	return recs, nil
}

// DecodeRecords parses JSON-lines records. A last line without its newline is what a crash in
// the middle of a write leaves: it is skipped when it does not parse. Every other malformed line
// is an error naming its line number, because it means the file was damaged, not torn.
func DecodeRecords(r io.Reader) ([]Record, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	var out []Record
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("dispatcher: read line %d: %w", lineNo, err)
		}
		torn := errors.Is(err, io.EOF)
		if len(bytes.TrimSpace(line)) > 0 {
			rec, perr := parseRecord(line)
			switch {
			case perr == nil:
				out = append(out, rec)
			case !torn:
				return nil, fmt.Errorf("line %d: %w", lineNo, perr)
			}
		}
		if torn {
			return out, nil
		}
	}
}

func parseRecord(line []byte) (Record, error) {
	var rec Record
	if err := json.Unmarshal(line, &rec); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := rec.Validate(); err != nil {
		return Record{}, err
	}
	return rec, nil
}

// NewRecord builds the record for dispatcher d of node/changefeed having processed (from, to].
func NewRecord(node, changefeed string, id heartbeatpb.DispatcherID, s heartbeatpb.TableSpan,
	mode heartbeatpb.Mode, from, to uint64) Record {
	return Record{
		Node: node, Changefeed: changefeed, Dispatcher: FormatID(id), Table: s.TableId,
		Start: hex.EncodeToString(s.StartKey), End: hex.EncodeToString(s.EndKey),
		Mode: ModeName(mode), From: from, To: to,
	}
}

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

// Sink receives the ranges dispatchers processed. The error and recovery contract every sink
// keeps (the file sink here, a future etcd mirror) is in docs/sinks.md:
//
//   - Append either accepts the record, which a later successful Flush makes durable and which is
//     never dropped while the process lives, or refuses it with an error (the caller then holds
//     its checkpoint below the record). While the sink is failing it refuses at once.
//   - Flush returning nil means every accepted record is durable, each exactly once, whole. An
//     error means nothing new is promised; the sink stays usable and retries on a later Flush
//     (on a fresh writer, from its last durable point) with a backoff of its own, so Flush
//     never blocks the caller's loop and no error sticks for the life of the process.
//   - Errors wrap ErrSinkUnavailable while the sink is in that retry state, and keep the cause
//     (for example syscall.ENOSPC) reachable with errors.Is.
type Sink interface {
	Append(Record) error
	// Flush makes every appended record durable (as durable as the sink promises).
	Flush() error
	Close() error
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

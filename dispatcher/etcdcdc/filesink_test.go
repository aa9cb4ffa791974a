package etcdcdc

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tidemark/tidemark/span"
)

// The file sink starts a new file beyond its size, keeps every record in order across files,
// reads non-UTF-8 keys back exactly, and cuts a torn last line a crash left when it reopens.
func TestFileSinkRotatesAndRepairs(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileSink(dir, "cf", 1000, true)
	if err != nil {
		t.Fatal(err)
	}
	w := s.Open(owner(did(1, 1), span.TableSpan(1)))
	var want []Event
	for i := range 40 {
		e := ev("/src/k", string(rune('a'+i%26)), int64(i+2))
		if i == 7 {
			e = Event{Key: []byte{0xff, 0x00, 'x'}, Value: []byte{0xfe}, Revision: int64(i + 2)}
		}
		if i == 9 {
			e = Event{Key: []byte("/src/k"), Delete: true, Revision: int64(i + 2)}
		}
		want = append(want, e)
		if err := w.Write(context.Background(), []Event{e}, e.Revision); err != nil {
			t.Fatal(err)
		}
	}
	files, err := SinkFiles(dir, "cf")
	if err != nil || len(files) < 3 {
		t.Fatalf("want several files of at most 1000 bytes, got %v (%v)", files, err)
	}
	for _, f := range files {
		if st, _ := os.Stat(f); st.Size() > 1000 {
			t.Errorf("%s is %d bytes, over the limit", f, st.Size())
		}
	}
	check := func(what string, n int) {
		t.Helper()
		recs, err := ReadFileSink(dir, "cf")
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != n {
			t.Fatalf("%s: %d records, want %d", what, len(recs), n)
		}
		for i, r := range recs {
			got, exp := r.Event(), want[i]
			if string(got.Key) != string(exp.Key) || got.Delete != exp.Delete || got.Revision != exp.Revision ||
				(!exp.Delete && string(got.Value) != string(exp.Value)) || r.Dispatcher != "1-1" || r.Node != "n1" {
				t.Fatalf("%s: record %d = %+v, want %+v", what, i, r, exp)
			}
		}
	}
	check("after writing", len(want))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of a line.
	last := files[len(files)-1]
	f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"key":"/src/torn","op":"pu`); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	s, err = NewFileSink(dir, "cf", 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	e := ev("/src/after", "z", 100)
	want = append(want, e)
	if err := s.Open(owner(did(1, 2), span.TableSpan(1))).Write(context.Background(), []Event{e}, 100); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadFileSink(dir, "cf")
	if err != nil {
		t.Fatalf("torn line not cut: %v", err)
	}
	if len(recs) != len(want) || recs[len(recs)-1].Key != "/src/after" || recs[len(recs)-1].Dispatcher != "1-2" {
		t.Fatalf("after the repair: %d records, last %+v", len(recs), recs[len(recs)-1])
	}
}

// A failed write's error stands while the disk is full even when no writer retries (its
// dispatcher stopped), and clears by Err's own probe once space returns; the probe leaves no
// byte in the file.
func TestFileSinkErrProbesWithoutWriters(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileSink(dir, "cf", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	var full atomic.Bool
	s.writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		if full.Load() {
			n, _ := f.WriteAt(b[:len(b)/2], off)
			return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return f.WriteAt(b, off)
	}
	w := s.Open(owner(did(1, 1), span.TableSpan(1)))
	if err := w.Write(context.Background(), []Event{ev("/src/a", "1", 2)}, 2); err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	if err := w.Write(context.Background(), []Event{ev("/src/b", "2", 3)}, 3); err == nil {
		t.Fatal("write to a full disk succeeded")
	}
	// No writer writes again from here on.
	time.Sleep(probeEvery + 100*time.Millisecond)
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("disk still full, no writer: Err = %v, want the ENOSPC", err)
	}
	full.Store(false)
	deadline := time.Now().Add(3 * probeEvery)
	for s.Err() != nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("space returned, no writer: Err still %v", err)
	}
	recs, err := ReadFileSink(dir, "cf")
	if err != nil || len(recs) != 1 || recs[0].Key != "/src/a" {
		t.Fatalf("after the probes: %+v, %v; want the one record written before the disk filled", recs, err)
	}
	files, _ := SinkFiles(dir, "cf")
	b, _ := os.ReadFile(files[len(files)-1])
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("the probe left bytes after the last line: %q", b)
	}
}

// Every record carries when it was written, in write order, so that a reader can time the
// sink alone (tests/bench measures move pauses from it).
func TestFileSinkRecordsWriteTime(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileSink(dir, "cf", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := s.Open(owner(did(1, 1), span.TableSpan(1)))
	before := time.Now().UnixNano()
	for i := range 3 {
		if err := w.Write(context.Background(), []Event{ev("/src/k", "v", int64(i+2))}, int64(i+2)); err != nil {
			t.Fatal(err)
		}
	}
	after := time.Now().UnixNano()
	recs, err := ReadFileSink(dir, "cf")
	if err != nil || len(recs) != 3 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	prev := before
	for i, r := range recs {
		if r.WrittenUnixNano < prev || r.WrittenUnixNano > after {
			t.Errorf("record %d written at %d, want in [%d, %d]", i, r.WrittenUnixNano, prev, after)
		}
		prev = r.WrittenUnixNano
	}
}

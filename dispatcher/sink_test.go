package dispatcher

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

func testRecord(from, to uint64) Record {
	return NewRecord("n1", "cf1", heartbeatpb.DispatcherID{Hi: 3, Lo: 4}, span.TableSpan(2), heartbeatpb.ModeDefault, from, to)
}

func TestFileSinkRoundTrip(t *testing.T) {
	for _, opts := range [][]FileSinkOption{nil, {WithFsync()}} {
		path := filepath.Join(t.TempDir(), "sink.jsonl")
		s, err := NewFileSink(path, opts...)
		if err != nil {
			t.Fatal(err)
		}
		want := []Record{testRecord(1, 2), testRecord(2, 5)}
		for _, r := range want {
			if err := s.Append(r); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := ReadRecords(path); len(got) != 0 {
			t.Fatalf("buffered records visible before Flush: %v", got)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		got, err := ReadRecords(path)
		if err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("read %v, %v; want %v", got, err, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
		if err := s.Append(testRecord(5, 6)); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("append after close: %v", err)
		}
		// Reopening appends rather than truncating.
		s2, err := NewFileSink(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(s2.Append(testRecord(5, 6)), s2.Close()); err != nil {
			t.Fatal(err)
		}
		if got, _ := ReadRecords(path); len(got) != 3 {
			t.Fatalf("after reopen: %d records, want 3", len(got))
		}
	}
}

func TestDecodeRecords(t *testing.T) {
	good := `{"node":"n1","changefeed":"cf1","dispatcher":"3-4","table":2,"start":"74","end":"75","mode":"default","from":1,"to":2}`
	cases := []struct {
		name    string
		input   string
		want    int
		wantErr string
	}{
		{"empty", "", 0, ""},
		{"two lines", good + "\n" + good + "\n", 2, ""},
		{"torn last line skipped", good + "\n" + good[:40], 1, ""},
		{"complete last line without newline kept", good + "\n" + good, 2, ""},
		{"blank lines ignored", "\n" + good + "\n\n", 1, ""},
		{"unknown fields ignored", strings.Replace(good, `"node"`, `"extra":1,"node"`, 1) + "\n", 1, ""},
		{"damaged middle line", good + "\n{bad\n" + good + "\n", 0, "line 2"},
		{"bad mode", strings.Replace(good, "default", "fast", 1) + "\n", 0, "mode"},
		{"bad hex", strings.Replace(good, `"74"`, `"zz"`, 1) + "\n", 0, "hex"},
		{"inverted span", strings.Replace(good, `"75"`, `"70"`, 1) + "\n", 0, "not below"},
		{"empty range", strings.Replace(good, `"to":2`, `"to":1`, 1) + "\n", 0, "empty"},
		{"bad dispatcher", strings.Replace(good, "3-4", "34", 1) + "\n", 0, "dispatcher id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeRecords(strings.NewReader(tc.input))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v, want one containing %q wrapping ErrInvalid", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("got %d records, %v; want %d", len(got), err, tc.want)
			}
		})
	}
}

func TestReadRecordsMissingFile(t *testing.T) {
	if _, err := ReadRecords(filepath.Join(t.TempDir(), "nope")); err == nil || !strings.HasPrefix(err.Error(), "dispatcher: ") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestIDAndModeRoundTrip(t *testing.T) {
	id := heartbeatpb.DispatcherID{Hi: 1 << 40, Lo: 7}
	if got, err := ParseID(FormatID(id)); err != nil || got != id {
		t.Fatalf("ParseID(FormatID) = %v, %v", got, err)
	}
	for id, want := range map[heartbeatpb.DispatcherID]string{
		{Hi: 1 << 40, Lo: 7}:             "1099511627776-7",
		{}:                               "0-0",
		{Hi: ^uint64(0), Lo: ^uint64(0)}: "18446744073709551615-18446744073709551615",
	} {
		if got := FormatID(id); got != want {
			t.Errorf("FormatID(%v) = %q, want %q", id, got, want)
		}
	}
	for _, bad := range []string{"", "1", "1-", "-1", "a-b", "1-2-3"} {
		if _, err := ParseID(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseID(%q): %v", bad, err)
		}
	}
	for _, m := range []heartbeatpb.Mode{heartbeatpb.ModeDefault, heartbeatpb.ModeRedo} {
		if got, err := ParseMode(ModeName(m)); err != nil || got != m {
			t.Errorf("mode %v round trip: %v %v", m, got, err)
		}
	}
}

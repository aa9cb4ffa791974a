package sinkcheck

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// key builds a key of table 1 with a one-letter suffix; "" is the table's start.
func sp(table int64, start, end string) heartbeatpb.TableSpan {
	t := span.TableSpan(table)
	s := t
	if start != "" {
		s.StartKey = append(append([]byte{}, t.StartKey...), start...)
	}
	if end != "" {
		s.EndKey = append(append([]byte{}, t.StartKey...), end...)
	}
	return s
}

func rec(node string, id uint64, s heartbeatpb.TableSpan, mode heartbeatpb.Mode, from, to uint64) dispatcher.Record {
	return dispatcher.NewRecord(node, "cf1", heartbeatpb.DispatcherID{Hi: 1, Lo: id}, s, mode, from, to)
}

// ranges appends records for (from, to] cut into steps of step.
func ranges(node string, id uint64, s heartbeatpb.TableSpan, from, to, step uint64) []dispatcher.Record {
	var out []dispatcher.Record
	for f := from; f < to; f += step {
		out = append(out, rec(node, id, s, heartbeatpb.ModeDefault, f, min(f+step, to)))
	}
	return out
}

func concat(parts ...[]dispatcher.Record) []dispatcher.Record {
	var out []dispatcher.Record
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestCheckGood(t *testing.T) {
	whole := sp(1, "", "")
	cases := []struct {
		name      string
		records   []dispatcher.Record
		tables    []int64
		wantBound uint64
	}{
		{"one dispatcher", ranges("n1", 1, whole, 100, 200, 10), []int64{1}, 200},
		{"move hands over at the final checkpoint", concat(
			ranges("n1", 1, whole, 100, 150, 10), ranges("n2", 2, whole, 150, 230, 20)), []int64{1}, 230},
		{"split: children start from the parent's final checkpoint", concat(
			ranges("n1", 1, whole, 100, 150, 10),
			ranges("n1", 2, sp(1, "", "m"), 150, 300, 30),
			ranges("n2", 3, sp(1, "m", ""), 150, 260, 10)), []int64{1}, 260},
		{"merge: sources stopped level, result starts there", concat(
			ranges("n1", 2, sp(1, "", "m"), 100, 300, 10),
			ranges("n1", 3, sp(1, "m", ""), 100, 300, 10),
			ranges("n1", 4, whole, 300, 400, 10)), []int64{1}, 400},
		{"records below the start ts are fine", ranges("n1", 1, whole, 50, 200, 10), nil, 200},
		{"redo mode checked on its own", concat(ranges("n1", 1, whole, 100, 200, 10),
			[]dispatcher.Record{rec("n1", 9, whole, heartbeatpb.ModeRedo, 100, 180)}), []int64{1}, 180},
		{"nothing recorded", nil, nil, 0},
		// The merged dispatcher starts from the least source checkpoint and catches up in its
		// first step, so the other source's tail (280,300] is processed again: a repeat.
		{"merge from the least source checkpoint repeats a tail", concat(
			ranges("n1", 2, sp(1, "", "m"), 100, 300, 10),
			ranges("n1", 3, sp(1, "m", ""), 100, 280, 10),
			[]dispatcher.Record{rec("n1", 4, whole, heartbeatpb.ModeDefault, 280, 320)},
			ranges("n1", 4, whole, 320, 400, 10)), []int64{1}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Check(tc.records, 100, tc.tables...)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() || rep.Err() != nil {
				t.Fatalf("unexpected findings: %v", rep.Err())
			}
			if rep.Bound != tc.wantBound {
				t.Fatalf("bound %d, want %d", rep.Bound, tc.wantBound)
			}
		})
	}
}

func TestCheckBroken(t *testing.T) {
	whole := sp(1, "", "")
	cases := []struct {
		name         string
		records      []dispatcher.Record
		tables       []int64
		wantGaps     []Gap
		wantOverlaps int
	}{
		{"move starts above the final checkpoint (I2)", concat(
			ranges("n1", 1, whole, 100, 150, 10), ranges("n2", 2, whole, 170, 230, 20)), nil,
			[]Gap{{Mode: "default", Table: 1, Start: "740000000000000001", End: "740000000000000002", From: 150, To: 170}}, 0},
		{"first dispatcher starts above the start ts", ranges("n1", 1, whole, 120, 200, 10), nil,
			[]Gap{{Mode: "default", Table: 1, Start: "740000000000000001", End: "740000000000000002", From: 100, To: 120}}, 0},
		{"split child starts late: gap on its keys only", concat(
			ranges("n1", 1, whole, 100, 150, 10),
			ranges("n1", 2, sp(1, "", "m"), 150, 300, 30),
			ranges("n2", 3, sp(1, "m", ""), 160, 260, 10)), nil,
			[]Gap{{Mode: "default", Table: 1, Start: "7400000000000000016d", End: "740000000000000002", From: 150, To: 160}}, 0},
		{"keys never processed inside a table", concat(
			ranges("n1", 1, sp(1, "", "c"), 100, 200, 10), ranges("n1", 2, sp(1, "f", ""), 100, 200, 10)), nil,
			[]Gap{{Mode: "default", Table: 1, Start: "74000000000000000163", End: "74000000000000000166", From: 100, To: 200}}, 0},
		{"table must be covered in full", ranges("n1", 1, sp(1, "c", ""), 100, 200, 10), []int64{1},
			[]Gap{{Mode: "default", Table: 1, Start: "740000000000000001", End: "74000000000000000163", From: 100, To: 200}}, 0},
		{"two owners at once (I1 evidence)", concat(
			ranges("n1", 1, whole, 100, 200, 10), ranges("n2", 2, sp(1, "c", "f"), 150, 180, 10)), nil, nil, 1},
		{"a merged dispatcher advancing alongside a source", concat(
			ranges("n1", 2, sp(1, "", "m"), 100, 300, 10),
			ranges("n1", 3, sp(1, "m", ""), 100, 280, 10),
			ranges("n1", 4, whole, 280, 400, 10)), []int64{1}, []Gap{}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Check(tc.records, 100, tc.tables...)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || rep.Err() == nil {
				t.Fatal("broken record set passed")
			}
			if len(rep.Overlaps) != tc.wantOverlaps {
				t.Fatalf("overlaps %+v, want %d", rep.Overlaps, tc.wantOverlaps)
			}
			if tc.wantGaps != nil {
				if len(rep.Gaps) != len(tc.wantGaps) {
					t.Fatalf("gaps %+v, want %+v", rep.Gaps, tc.wantGaps)
				}
				for i := range tc.wantGaps {
					if rep.Gaps[i] != tc.wantGaps[i] {
						t.Fatalf("gap %d: %+v, want %+v", i, rep.Gaps[i], tc.wantGaps[i])
					}
				}
			}
		})
	}
}

func TestCheckOverlapDetail(t *testing.T) {
	whole := sp(1, "", "")
	rep, err := Check(concat(ranges("n1", 1, whole, 100, 200, 10), ranges("n2", 2, sp(1, "c", "f"), 150, 180, 10)), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := Overlap{Mode: "default", Table: 1, Start: "74000000000000000163", End: "74000000000000000166",
		From: 150, To: 180, A: "n1/1-1", B: "n2/1-2"}
	if len(rep.Overlaps) != 1 || rep.Overlaps[0] != want {
		t.Fatalf("overlaps %+v, want %+v", rep.Overlaps, want)
	}
	if !strings.Contains(rep.Err().Error(), "n2/1-2") {
		t.Fatalf("summary lacks the owners: %v", rep.Err())
	}
}

func TestCheckMalformed(t *testing.T) {
	bad := rec("n1", 1, sp(1, "", ""), heartbeatpb.ModeDefault, 100, 200)
	bad.Mode = "fast"
	if _, err := Check([]dispatcher.Record{bad}, 0); err == nil || !strings.HasPrefix(err.Error(), "sinkcheck: record 0") {
		t.Fatalf("malformed record: %v", err)
	}
}

// TestCheckScale: a million records over ten thousand spans are checked quickly.
func TestCheckScale(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 100_000
	}
	pieces, err := span.Split(span.TableSpan(1), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	records := make([]dispatcher.Record, 0, n)
	perSpan := n / len(pieces)
	for i, p := range pieces {
		for j := 0; j < perSpan; j++ {
			records = append(records, rec("n1", uint64(i+1), p, heartbeatpb.ModeDefault, uint64(100+j*10), uint64(110+j*10)))
		}
	}
	start := time.Now()
	rep, err := Check(records, 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Bound != uint64(100+perSpan*10) || rep.Spans != len(pieces) {
		t.Fatalf("report: ok=%t bound=%d spans=%d: %v", rep.OK(), rep.Bound, rep.Spans, rep.Err())
	}
	t.Logf("%d records, %d spans checked in %s", len(records), rep.Spans, time.Since(start))
}

func TestCheckRepeatDetail(t *testing.T) {
	whole := sp(1, "", "")
	// n1 stopped at 200 but only 150 was persisted; after the crash n2 resumes from 150 and its
	// first step reaches 260.
	rep, err := Check(concat(ranges("n1", 1, whole, 100, 200, 10),
		[]dispatcher.Record{rec("n2", 2, whole, heartbeatpb.ModeDefault, 150, 260)},
		ranges("n2", 2, whole, 260, 300, 10)), 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := Overlap{Mode: "default", Table: 1, Start: "740000000000000001", End: "740000000000000002",
		From: 150, To: 200, A: "n1/1-1", B: "n2/1-2"}
	if !rep.OK() || len(rep.Repeats) != 1 || rep.Repeats[0] != want {
		t.Fatalf("repeats %+v (ok=%t), want %+v", rep.Repeats, rep.OK(), want)
	}
}

// timed stamps records with wall times: the i-th record at atMs + i*stepMs.
func timed(recs []dispatcher.Record, atMs, stepMs int64) []dispatcher.Record {
	out := append([]dispatcher.Record(nil), recs...)
	for i := range out {
		out[i].At = atMs + int64(i)*stepMs
	}
	return out
}

// TestCheckWallTime: with wall times, I1 is judged by ownership windows, not by record shapes.
func TestCheckWallTime(t *testing.T) {
	whole := sp(1, "", "")
	cases := []struct {
		name                  string
		records               []dispatcher.Record
		wantOverlaps, repeats int
	}{
		// n2 resumes from 150 after n1 crashed, in small steps (the untimed shape rule would
		// call this an overlap): its window starts after n1's ended, so it is a replay.
		{"crash replay in small steps", concat(
			timed(ranges("n1", 1, whole, 100, 200, 10), 1000, 100),
			timed(ranges("n2", 2, whole, 150, 300, 10), 5000, 100)), 0, 1},
		{"move handing over in the same millisecond", concat(
			timed(ranges("n1", 1, whole, 100, 150, 10), 1000, 100),
			timed(ranges("n2", 2, whole, 150, 230, 20), 1400, 100)), 0, 0},
		// Both catch up in big first steps (the shape rule would call this a repeat), but they
		// held the keys at the same time.
		{"two owners at once, each catching up in one step", concat(
			timed(ranges("n1", 1, whole, 100, 300, 100), 1000, 1000),
			timed(ranges("n2", 2, sp(1, "c", "f"), 150, 350, 100), 1500, 1000)), 1, 0},
		{"two owners at once with disjoint ts", concat(
			timed(ranges("n1", 1, whole, 100, 200, 10), 1000, 100),
			timed(ranges("n2", 2, sp(1, "c", "f"), 200, 260, 10), 1500, 100)), 1, 0},
		// The successor's first stamp trails its creation by up to a loop tick, so a clean
		// handoff can reach WindowSlackMs into the previous window: a replay, not two owners.
		{"handoff stamped by a stale tick", concat(
			timed(ranges("n1", 1, whole, 100, 150, 10), 1000, 100),
			timed(ranges("n2", 2, whole, 140, 230, 30), 1350, 100)), 0, 1},
		{"a one-record owner inside another's window", concat(
			timed(ranges("n1", 1, whole, 100, 200, 10), 1000, 100),
			timed(ranges("n2", 2, sp(1, "c", "f"), 150, 160, 10), 1500, 100)), 1, 0},
		// Old files: one dispatcher lacks wall times, so the shape rule decides for its keys.
		{"untimed owner falls back to the shape rule", concat(
			timed(ranges("n1", 1, whole, 100, 200, 10), 1000, 100),
			ranges("n2", 2, sp(1, "c", "f"), 150, 180, 10)), 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Check(tc.records, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Overlaps) != tc.wantOverlaps || len(rep.Repeats) != tc.repeats {
				t.Fatalf("overlaps %+v repeats %+v, want %d and %d", rep.Overlaps, rep.Repeats, tc.wantOverlaps, tc.repeats)
			}
			if rep.OK() != (tc.wantOverlaps == 0) {
				t.Fatalf("ok=%t with %d overlaps: %v", rep.OK(), len(rep.Overlaps), rep.Err())
			}
		})
	}
}

func TestRecordWallTimeRoundTrip(t *testing.T) {
	r := rec("n1", 1, sp(1, "", ""), heartbeatpb.ModeDefault, 100, 200)
	r.At = 1_700_000_000_123
	line, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(line), `"at_ms":1700000000123`) {
		t.Fatalf("record line %s lacks at_ms", line)
	}
	old := strings.Replace(string(line), `,"at_ms":1700000000123`, "", 1)
	recs, err := dispatcher.DecodeRecords(strings.NewReader(old + "\n"))
	if err != nil || len(recs) != 1 || recs[0].At != 0 {
		t.Fatalf("old line without at_ms: %+v, %v", recs, err)
	}
}

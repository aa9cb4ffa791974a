package dispatcher

import (
	"errors"
	"testing"
	"time"
	"unsafe"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
	"github.com/tidemark/tidemark/ts"
)

var t0 = time.UnixMilli(1_700_000_000_000)

func newTestSim(t *testing.T, sink Sink, startTs uint64) *Sim {
	t.Helper()
	d, err := NewSim(SimConfig{Node: "n1", Changefeed: "cf1", Sink: sink},
		heartbeatpb.DispatcherConfig{Id: heartbeatpb.DispatcherID{Hi: 5, Lo: 1}, Span: span.TableSpan(1), StartTs: startTs},
		heartbeatpb.TableConfig{TableId: 1, Load: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSimPoll(t *testing.T) {
	start := ts.FromTime(t0)
	type step struct {
		at     time.Duration // since t0
		stop   bool
		wantCp uint64
		append bool // a new record (prev, wantCp] must appear
	}
	cases := []struct {
		name    string
		startTs uint64
		steps   []step
	}{
		{"advances behind the clock by the lag", start, []step{
			{at: 1000 * time.Millisecond, wantCp: ts.FromTime(t0.Add(800 * time.Millisecond)), append: true},
		}},
		{"waits for the interval", start, []step{
			{at: time.Second, wantCp: ts.FromTime(t0.Add(800 * time.Millisecond)), append: true},
			{at: 1400 * time.Millisecond, wantCp: ts.FromTime(t0.Add(800 * time.Millisecond))},
			{at: 1500 * time.Millisecond, wantCp: ts.FromTime(t0.Add(1300 * time.Millisecond)), append: true},
		}},
		{"never below the start ts", ts.FromTime(t0.Add(time.Hour)), []step{
			{at: time.Second, wantCp: ts.FromTime(t0.Add(time.Hour))},
		}},
		{"stopped ignores Poll", start, []step{
			{at: time.Second, wantCp: ts.FromTime(t0.Add(800 * time.Millisecond)), append: true},
			{at: 1100 * time.Millisecond, stop: true, wantCp: ts.FromTime(t0.Add(800 * time.Millisecond))},
			{at: 5 * time.Second, wantCp: ts.FromTime(t0.Add(800 * time.Millisecond))},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sink := NewMemSink()
			d := newTestSim(t, sink, tc.startTs)
			prev := tc.startTs
			for i, s := range tc.steps {
				var cp uint64
				if s.stop {
					var err error
					if cp, err = d.Stop(t0.Add(s.at)); err != nil {
						t.Fatal(err)
					}
				} else {
					cp, _ = d.Poll(t0.Add(s.at))
				}
				if cp != s.wantCp {
					t.Fatalf("step %d: checkpoint %d, want %d", i, cp, s.wantCp)
				}
				recs := sink.Records()
				if s.append {
					last := recs[len(recs)-1]
					if last.From != prev || last.To != cp {
						t.Fatalf("step %d: record (%d,%d], want (%d,%d]", i, last.From, last.To, prev, cp)
					}
					if last.At != t0.Add(s.at).UnixMilli() {
						t.Fatalf("step %d: record at %d ms, want the poll time %d", i, last.At, t0.Add(s.at).UnixMilli())
					}
					prev = cp
				}
			}
		})
	}
}

func TestSimRecordAndLoad(t *testing.T) {
	sink := NewMemSink()
	d := newTestSim(t, sink, 100)
	cp, load := d.Poll(t0)
	if load != 1000 {
		t.Fatalf("whole-table load %d, want 1000", load)
	}
	want := Record{Node: "n1", Changefeed: "cf1", Dispatcher: "5-1", Table: 1, Start: "740000000000000001",
		End: "740000000000000002", Mode: "default", From: 100, To: cp, At: t0.UnixMilli()}
	if got := sink.Records(); len(got) != 1 || got[0] != want {
		t.Fatalf("records %+v, want %+v", got, want)
	}
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestScaleLoad(t *testing.T) {
	halves, err := span.Split(span.TableSpan(7), 2)
	if err != nil {
		t.Fatal(err)
	}
	quarters, err := span.Split(halves[0], 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s    heartbeatpb.TableSpan
		want uint64
	}{
		{span.TableSpan(7), 1000},
		{halves[0], 500},
		{halves[1], 500},
		{quarters[0], 250},
	} {
		if got := ScaleLoad(1000, tc.s); got != tc.want {
			t.Errorf("ScaleLoad(%s) = %d, want %d", span.String(tc.s), got, tc.want)
		}
	}
	if ScaleLoad(0, span.TableSpan(1)) != 0 {
		t.Error("zero table load must scale to zero")
	}
}

func TestNewSimRejectsBadConfig(t *testing.T) {
	good := heartbeatpb.DispatcherConfig{Id: heartbeatpb.DispatcherID{Hi: 1, Lo: 1}, Span: span.TableSpan(1)}
	tbl := heartbeatpb.TableConfig{TableId: 1}
	sink := NewMemSink()
	bad := []struct {
		name string
		cfg  SimConfig
		dc   heartbeatpb.DispatcherConfig
		tbl  heartbeatpb.TableConfig
	}{
		{"no sink", SimConfig{}, good, tbl},
		{"negative lag", SimConfig{Sink: sink, Lag: -1}, good, tbl},
		{"other table", SimConfig{Sink: sink}, good, heartbeatpb.TableConfig{TableId: 2}},
		{"bad span", SimConfig{Sink: sink}, heartbeatpb.DispatcherConfig{Span: heartbeatpb.TableSpan{TableId: 1}}, tbl},
		{"bad mode", SimConfig{Sink: sink}, heartbeatpb.DispatcherConfig{Span: span.TableSpan(1), Mode: 9}, tbl},
	}
	for _, tc := range bad {
		if _, err := NewSim(tc.cfg, tc.dc, tc.tbl); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", tc.name, err)
		}
	}
}

// failingSink fails every append, as a full disk would.
type failingSink struct{ MemSink }

func (s *failingSink) Append(Record) error { return errors.New("disk full") }

func TestSimHoldsCheckpointWhenSinkFails(t *testing.T) {
	d := newTestSim(t, &failingSink{}, 100)
	if cp, _ := d.Poll(t0); cp != 100 {
		t.Fatalf("checkpoint moved to %d although nothing was recorded", cp)
	}
}

func TestSimFactory(t *testing.T) {
	if _, err := NewSimFactory(SimFactoryConfig{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("factory without sink: %v", err)
	}
	sink := NewMemSink()
	f, err := NewSimFactory(SimFactoryConfig{Node: "n1", Changefeed: "cf1", Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.New(heartbeatpb.DispatcherConfig{Id: heartbeatpb.DispatcherID{Hi: 1, Lo: 2}, Span: span.TableSpan(3),
		StartTs: 10, Mode: heartbeatpb.ModeRedo}, heartbeatpb.TableConfig{TableId: 3, Load: 4})
	if err != nil {
		t.Fatal(err)
	}
	d.Poll(t0)
	if len(sink.Flushed()) != 0 {
		t.Fatal("records durable before Flush")
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := sink.Flushed(); len(got) != 1 || got[0].Mode != "redo" || got[0].Dispatcher != "1-2" {
		t.Fatalf("flushed %+v", got)
	}
}

// TestSimFactoryRecordBudget: the dispatchers of one factory append at most the budget's records
// a second together however many there are (so a million spans do not write hundreds of MB/s),
// and a factory with few dispatchers records at the configured interval as before.
func TestSimFactoryRecordBudget(t *testing.T) {
	const perSecond, n = 100, 400
	sink := NewMemSink()
	f, err := NewSimFactory(SimFactoryConfig{Node: "n1", Changefeed: "cf1", Sink: sink,
		Interval: 100 * time.Millisecond, RecordsPerSecond: perSecond})
	if err != nil {
		t.Fatal(err)
	}
	var ds []Dispatcher
	for i := 0; i < n; i++ {
		d, err := f.New(heartbeatpb.DispatcherConfig{Id: heartbeatpb.DispatcherID{Hi: 1, Lo: uint64(i)},
			Span: span.TableSpan(int64(i)), StartTs: ts.FromTime(t0)}, heartbeatpb.TableConfig{TableId: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	// 20 s polled every 100 ms: each dispatcher records once at first and then every 4 s.
	const seconds = 20
	for at := time.Second; at <= (seconds+1)*time.Second; at += 100 * time.Millisecond {
		for _, d := range ds {
			d.Poll(t0.Add(at))
		}
	}
	got := len(sink.Records())
	if limit := n + seconds*perSecond; got > limit || got < seconds*perSecond/2 {
		t.Fatalf("%d dispatchers appended %d records in %d s, want between %d and %d", n, got, seconds, seconds*perSecond/2, limit)
	}
	// Closing all but one gives the last its configured interval back.
	for _, d := range ds[1:] {
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	before := len(sink.Records())
	base := t0.Add((seconds + 10) * time.Second)
	for at := time.Duration(0); at < time.Second; at += 100 * time.Millisecond {
		ds[0].Poll(base.Add(at))
	}
	if added := len(sink.Records()) - before; added < 9 {
		t.Fatalf("a lone dispatcher appended %d records in 1 s at a 100 ms interval, want 10", added)
	}
}

// TestSimReplicate: the Replicate hook is handed exactly the range the next record claims,
// starting at the start ts; a failure holds the checkpoint and no record is written, and once
// stopped the dispatcher asks for nothing more.
func TestSimReplicate(t *testing.T) {
	start := ts.FromTime(t0)
	type call struct{ from, to uint64 }
	var calls []call
	fail := false
	sink := NewMemSink()
	d, err := NewSim(SimConfig{Node: "n1", Changefeed: "cf1", Sink: sink, Replicate: func(from, to uint64) error {
		calls = append(calls, call{from, to})
		if fail {
			return errors.New("source unreachable")
		}
		return nil
	}}, heartbeatpb.DispatcherConfig{Id: heartbeatpb.DispatcherID{Hi: 5, Lo: 1}, Span: span.TableSpan(1), StartTs: start},
		heartbeatpb.TableConfig{TableId: 1})
	if err != nil {
		t.Fatal(err)
	}
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	cp1, _ := d.Poll(at(1000))
	if want := ts.FromTime(at(800)); cp1 != want || len(calls) != 1 || calls[0] != (call{start, want}) {
		t.Fatalf("first poll: checkpoint %d, calls %v; want %d after one call (%d, %d]", cp1, calls, want, start, want)
	}
	fail = true
	if cp, _ := d.Poll(at(2000)); cp != cp1 || len(sink.Records()) != 1 {
		t.Fatalf("failed replication: checkpoint %d (want %d held), %d records (want 1)", cp, cp1, len(sink.Records()))
	}
	fail = false
	cp3, _ := d.Poll(at(3000))
	if want := ts.FromTime(at(2800)); cp3 != want || calls[len(calls)-1] != (call{cp1, want}) {
		t.Fatalf("retry: checkpoint %d, last call %v; want %d from (%d, %d]", cp3, calls[len(calls)-1], want, cp1, want)
	}
	if r := sink.Records()[1]; r.From != cp1 || r.To != cp3 {
		t.Fatalf("record (%d, %d] after the retry, want (%d, %d]", r.From, r.To, cp1, cp3)
	}
	n := len(calls)
	if final, _ := d.Stop(at(3100)); final != cp3 {
		t.Fatalf("final %d, want %d", final, cp3)
	}
	d.Poll(at(9000))
	if len(calls) != n {
		t.Fatalf("a stopped dispatcher replicated again: %v", calls[n:])
	}
}

// A worker holds one Sim per simulated dispatcher, a million at the bench's largest size: a Sim
// past the 112 B size class costs 32 MB there (the next class is 128 B).
func TestSimSize(t *testing.T) {
	if got := unsafe.Sizeof(Sim{}); got > 112 {
		t.Fatalf("Sim is %d B, over 112", got)
	}
}

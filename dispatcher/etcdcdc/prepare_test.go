package etcdcdc

import (
	"fmt"
	"testing"
	"time"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// A prepared dispatcher writes nothing while the source changes; committed at F it writes
// exactly the events above F (each once, the buffered ones and those after the commit) and
// nothing at or below it, whether its buffer held
// them (buffer 1000) or overflowed and was dropped (buffer 3: read again from F+1). Abandoned
// (Close), it leaves the sink empty.
func TestPrepareCommit(t *testing.T) {
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	for _, tc := range []struct {
		name   string
		buffer int
		commit bool
	}{{"buffered", 1000, true}, {"overflowed", 3, true}, {"abandoned", 1000, false}} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := "/" + tc.name + "/"
			start := rev(t, cli)
			sink, err := NewFileSink(t.TempDir(), "cf", 0, false)
			if err != nil {
				t.Fatal(err)
			}
			f, err := NewFactory(FactoryConfig{Node: "n1", Changefeed: "cf", Sink: sink,
				Source:           &etcdutil.SourceConfig{Endpoints: etcd.ClientURLs(), Prefix: prefix},
				ProgressInterval: 20 * time.Millisecond, ProbeInterval: 50 * time.Millisecond, PrepareBuffer: tc.buffer})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = f.Close() })
			var pr dispatcher.Preparer = f
			s := span.TableSpan(1)
			p, err := pr.Prepare(heartbeatpb.DispatcherConfig{Id: did(2, 1), Span: s, StartTs: uint64(start)},
				heartbeatpb.TableConfig{TableId: 1})
			if err != nil {
				t.Fatal(err)
			}
			var final, last int64
			for i := range 10 {
				last = put(t, cli, fmt.Sprintf("%sk%d", prefix, i), fmt.Sprint(i))
				if i == 4 {
					final = last
				}
			}
			time.Sleep(200 * time.Millisecond) // let the prepared watch see (and buffer) them all
			if !dispatcher.IsWarm(p) {         // well inside maxWarmup: warm because its watch caught up
				t.Fatal("the prepared dispatcher is not warm 200 ms after its watch was sent the history")
			}
			if recs, err := ReadFileSink(sink.dir, "cf"); err != nil || len(recs) != 0 {
				t.Fatalf("before the commit the sink holds %d records (err %v), want none", len(recs), err)
			}
			if !tc.commit {
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
				put(t, cli, prefix+"after", "x")
				time.Sleep(100 * time.Millisecond)
				if recs, err := ReadFileSink(sink.dir, "cf"); err != nil || len(recs) != 0 {
					t.Fatalf("abandoned: the sink holds %d records (err %v), want none", len(recs), err)
				}
				return
			}
			pp := p.(*prepared)
			pp.mu.Lock()
			dropped, buffered := pp.dropped, pp.events
			pp.mu.Unlock()
			if wantDrop := tc.buffer < 10; dropped != wantDrop || (!dropped && buffered != 10) {
				t.Fatalf("buffer of %d: dropped %v with %d events, want dropped %v or all 10 held", tc.buffer, dropped, buffered, wantDrop)
			}
			d, err := p.Commit(uint64(final))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Close() })
			if _, err := p.Commit(uint64(final)); err == nil {
				t.Fatal("a second commit succeeded")
			}
			// What comes after the commit arrives on the watch the commit handed over (or a
			// new one after a drop): each event once, in order.
			for i := range 5 {
				last = put(t, cli, fmt.Sprintf("%safter%d", prefix, i), fmt.Sprint(i))
			}
			waitCheckpoint(t, d.(*Dispatcher), last)
			recs, err := ReadFileSink(sink.dir, "cf")
			if err != nil {
				t.Fatal(err)
			}
			seen := map[int64]int{}
			for _, r := range recs {
				if r.Op == "" || r.Key == "" {
					continue // the claim (an empty write) carries no event
				}
				if r.ModRevision <= final {
					t.Errorf("record of revision %d at or below the final %d: %+v", r.ModRevision, final, r)
				}
				seen[r.ModRevision]++
			}
			for r := final + 1; r <= last; r++ {
				if seen[r] != 1 {
					t.Errorf("revision %d written %d times, want once", r, seen[r])
				}
			}
		})
	}
}

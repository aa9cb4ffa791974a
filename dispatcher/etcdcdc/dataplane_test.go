package etcdcdc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/span"
)

// failingSink wraps a sink with a switch that makes every write fail.
type failingSink struct {
	Sink
	fail atomic.Bool
}

func (s *failingSink) Open(o Owner) SpanWriter {
	return &failingWriter{SpanWriter: s.Sink.Open(o), s: s}
}

type failingWriter struct {
	SpanWriter
	s *failingSink
}

func (w *failingWriter) Write(ctx context.Context, events []Event, through int64) error {
	if w.s.fail.Load() {
		return errors.New("test: sink down")
	}
	return w.SpanWriter.Write(ctx, events, through)
}

// plane records what a factory reports to the node's metrics.
type plane struct {
	events, bytes, sinkErrs, srcErrs atomic.Int64
	mu                               sync.Mutex
	lag                              func(time.Time) dispatcher.Lag
}

func (p *plane) hooks() dispatcher.DataPlane {
	return dispatcher.DataPlane{
		OnReplicated:  func(n, b int) { p.events.Add(int64(n)); p.bytes.Add(int64(b)) },
		OnSinkError:   func(error) { p.sinkErrs.Add(1) },
		OnSourceError: func(error) { p.srcErrs.Add(1) },
		SetLag:        func(fn func(time.Time) dispatcher.Lag) { p.mu.Lock(); p.lag = fn; p.mu.Unlock() },
	}
}

func (p *plane) lagNow() dispatcher.Lag {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lag(time.Now())
}

// The factory counts every replicated event and its bytes once, and its lag grows while the
// sink fails (revisions and seconds) and goes back to zero once the sink takes the writes.
func TestDataPlaneCountsAndLag(t *testing.T) {
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	start := rev(t, cli)
	inner, err := NewFileSink(t.TempDir(), "cf", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	sink := &failingSink{Sink: inner}
	var p plane
	f, err := NewFactory(FactoryConfig{Node: "n1", Changefeed: "cf", Source: &etcdutil.SourceConfig{Endpoints: etcd.ClientURLs(), Prefix: "/src/"},
		Sink: sink, ProgressInterval: 20 * time.Millisecond, ProbeInterval: 50 * time.Millisecond, DataPlane: p.hooks()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	if p.lag == nil {
		t.Fatal("the factory did not give the node its lag function")
	}
	d := newTestDispatcher(t, f, did(1, 1), span.TableSpan(1), start)
	var last int64
	wantBytes := 0
	for i := range 30 {
		k, v := fmt.Sprintf("/src/k%d", i), fmt.Sprint(i*i)
		last = put(t, cli, k, v)
		wantBytes += len(k) + len(v)
	}
	waitCheckpoint(t, d, last)
	if p.events.Load() != 30 || p.bytes.Load() != int64(wantBytes) {
		t.Fatalf("replicated %d events, %d bytes; want 30, %d", p.events.Load(), p.bytes.Load(), wantBytes)
	}
	waitLag(t, &p, func(l dispatcher.Lag) bool { return l.Revisions == 0 && l.Seconds == 0 }, "caught up")

	sink.fail.Store(true)
	for i := range 5 {
		last = put(t, cli, fmt.Sprintf("/src/x%d", i), "v")
	}
	time.Sleep(500 * time.Millisecond)
	l := p.lagNow()
	if l.Revisions < 5 || l.Seconds < 0.4 {
		t.Fatalf("sink down for 0.5s behind 5 writes: lag %+v", l)
	}
	if p.sinkErrs.Load() == 0 {
		t.Fatal("failed sink writes were not counted")
	}
	sink.fail.Store(false)
	waitCheckpointFor(t, d, last, 10*time.Second)
	waitLag(t, &p, func(l dispatcher.Lag) bool { return l.Revisions == 0 && l.Seconds == 0 }, "sink back")
	if p.events.Load() != 35 {
		t.Fatalf("replicated %d events after the outage, want 35", p.events.Load())
	}
	if p.srcErrs.Load() != 0 {
		t.Fatalf("%d source errors counted with a healthy source", p.srcErrs.Load())
	}
	// A stopped dispatcher no longer counts.
	sink.fail.Store(true)
	put(t, cli, "/src/late", "v")
	time.Sleep(100 * time.Millisecond)
	sink.fail.Store(false)
	if _, err := d.Stop(time.Now()); err != nil {
		t.Fatal(err)
	}
	if l := p.lagNow(); l != (dispatcher.Lag{}) {
		t.Fatalf("lag %+v with no working dispatcher", l)
	}
}

func waitLag(t *testing.T, p *plane, ok func(dispatcher.Lag) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l := p.lagNow()
		if ok(l) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: lag %+v", what, l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

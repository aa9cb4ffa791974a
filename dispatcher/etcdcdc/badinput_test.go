package etcdcdc

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/span"
)

// A full disk under the file sink holds the checkpoint and shows as the span's error and the
// factory's Flush failure; once there is room again the dispatcher resumes on its own, and the
// files hold every event once, in order, with no torn line.
func TestDispatcherFileSinkDiskFull(t *testing.T) {
	src := embedetcd.StartForTest(t)
	cli := src.Client(t)
	dir := t.TempDir()
	sink, err := NewFileSink(dir, "cf", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	var full atomic.Bool
	sink.writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		if full.Load() { // what fits lands, then ENOSPC: a torn line for the sink to cut
			n, _ := f.WriteAt(b[:len(b)/2], off)
			return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return f.WriteAt(b, off)
	}
	f := newTestFactory(t, src.ClientURLs(), &etcdutil.SourceConfig{Prefix: "/src/"}, sink)
	start := rev(t, cli)
	d := newTestDispatcher(t, f, did(1, 1), span.TableSpan(1), start)
	first := put(t, cli, "/src/a", "0")
	waitCheckpoint(t, d, first)

	full.Store(true)
	var last int64
	for i := range 20 {
		last = put(t, cli, fmt.Sprintf("/src/k%02d", i), fmt.Sprint(i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := d.Err(); err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("disk full: want the span's error to say so, got %v", err)
	}
	if err := f.Flush(); err == nil {
		t.Fatal("disk full: the factory's Flush reports no sink failure")
	}
	time.Sleep(300 * time.Millisecond) // a few retries, all failing
	if cp, _ := d.Poll(time.Now()); int64(cp) != first {
		t.Fatalf("checkpoint %d moved while the disk was full; want it held at %d", cp, first)
	}

	full.Store(false)
	waitCheckpointFor(t, d, last, 30*time.Second)
	if err := d.Err(); err != nil {
		t.Fatalf("room again: still %v", err)
	}
	if err := f.Flush(); err != nil {
		t.Fatalf("room again: Flush %v", err)
	}
	recs, err := ReadFileSink(dir, "cf")
	if err != nil {
		t.Fatalf("the files after the outage: %v", err)
	}
	if len(recs) != 21 {
		t.Fatalf("%d records after the outage, want 21 (each event once)", len(recs))
	}
	for i, r := range recs {
		if want := first + int64(i); r.ModRevision != want {
			t.Fatalf("record %d at revision %d, want %d: %+v", i, r.ModRevision, want, r)
		}
	}
}

// An unreachable source is an error naming its endpoints, retried with backoff; once the
// source answers, the same dispatcher replicates without a restart and its error clears.
func TestDispatcherSourceComesBack(t *testing.T) {
	ep := "http://127.0.0.1:24611"
	sink, err := NewFileSink(t.TempDir(), "cf", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	f := newTestFactory(t, []string{ep}, &etcdutil.SourceConfig{Prefix: "/src/"}, sink)
	d := newTestDispatcher(t, f, did(1, 1), span.TableSpan(1), 0)
	deadline := time.Now().Add(10 * time.Second)
	for d.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := d.Err(); err == nil || !strings.Contains(err.Error(), ep) {
		t.Fatalf("want an error naming %s, got %v", ep, err)
	}
	src, err := embedetcd.Start(embedetcd.Config{Dir: t.TempDir(), ClientURL: ep, PeerURL: "http://127.0.0.1:24612", TickMs: 10, ElectionMs: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	cli := src.Client(t)
	last := put(t, cli, "/src/x", "1")
	waitCheckpointFor(t, d, last, 30*time.Second)
	deadline = time.Now().Add(10 * time.Second)
	for d.Err() != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := d.Err(); err != nil {
		t.Fatalf("source back: still %v", err)
	}
	if recs, err := ReadFileSink(sink.dir, "cf"); err != nil || len(recs) != 1 || recs[0].Key != "/src/x" {
		t.Fatalf("records after the source came back: %+v (%v)", recs, err)
	}
}

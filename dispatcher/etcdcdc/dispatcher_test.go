package etcdcdc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/span"
)

// Dispatchers over three spans of a prefix write every put and delete above their start
// revision to the file sink, and nothing from before it; their checkpoints reach the source's
// last revision, and an idle span advances through progress notifications.
func TestDispatcherFileSink(t *testing.T) {
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	put(t, cli, "/src/before", "old") // below the start revision: never written
	start := rev(t, cli)
	sink, err := NewFileSink(t.TempDir(), "cf", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	f := newTestFactory(t, etcd.ClientURLs(), &etcdutil.SourceConfig{Prefix: "/src/"}, sink)
	var ds []*Dispatcher
	for i, s := range splitTable(t, 3) {
		ds = append(ds, newTestDispatcher(t, f, did(1, uint64(i+1)), s, start))
	}
	var last int64
	want := map[string]string{}
	for i := range 50 {
		k := fmt.Sprintf("/src/k%02d", i%20)
		if i%7 == 3 {
			last = del(t, cli, k)
			want[k+"@"+fmt.Sprint(last)] = "delete"
		} else {
			last = put(t, cli, k, fmt.Sprint(i))
			want[k+"@"+fmt.Sprint(last)] = "put " + fmt.Sprint(i)
		}
	}
	put(t, cli, "/other", "x") // outside the prefix
	for _, d := range ds {
		waitCheckpoint(t, d, last)
	}
	recs, err := ReadFileSink(sink.dir, "cf")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range recs {
		v := r.Op
		if r.Op == "put" {
			v += " " + r.Value
		}
		got[r.Key+"@"+fmt.Sprint(r.ModRevision)] = v
	}
	// Deletes of absent keys make no event; drop them from what is wanted.
	for k, v := range want {
		if _, ok := got[k]; !ok && v == "delete" {
			delete(want, k)
		}
	}
	if err := sameMaps(want, got); err != nil {
		t.Fatalf("sink records differ from the source events: %v", err)
	}
	// Idle: the spans see no event of theirs, yet advance past writes elsewhere.
	idle := put(t, cli, "/zzz", "elsewhere")
	for _, d := range ds {
		waitCheckpoint(t, d, idle)
		if err := d.Err(); err != nil {
			t.Fatalf("healthy dispatcher reports %v", err)
		}
	}
}

// The mirror equals the source under the prefix once the checkpoint is at the last write;
// after Stop nothing above the final revision reaches the mirror.
func TestDispatcherMirrorAndStop(t *testing.T) {
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	put(t, cli, "/src/a", "1")
	start := rev(t, cli)
	// The mirror is the source state at start plus what follows; seed it like a snapshot.
	put(t, cli, "/dst/a", "1")
	ms, err := NewMirrorSink(MirrorConfig{Client: cli, FenceRoot: FenceRoot("c", "cf"), SourcePrefix: "/src/", DestPrefix: "/dst/"})
	if err != nil {
		t.Fatal(err)
	}
	f := newTestFactory(t, etcd.ClientURLs(), &etcdutil.SourceConfig{Prefix: "/src/"}, ms)
	d := newTestDispatcher(t, f, did(1, 1), span.TableSpan(1), start)
	var last int64
	for i := range 300 {
		k := fmt.Sprintf("/src/k%03d", i%37)
		if i%5 == 4 {
			last = del(t, cli, k)
		} else {
			last = put(t, cli, k, fmt.Sprint(i))
		}
	}
	waitCheckpoint(t, d, last)
	src := dump(t, cli, "/src/")
	dst := map[string]string{}
	for k, v := range dump(t, cli, "/dst/") {
		dst["/src/"+strings.TrimPrefix(k, "/dst/")] = v
	}
	if err := sameMaps(src, dst); err != nil {
		t.Fatalf("mirror differs from source: %v", err)
	}
	final, err := d.Stop(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if int64(final) < last {
		t.Fatalf("final %d below the checkpoint reached, %d", final, last)
	}
	put(t, cli, "/src/after-stop", "x")
	time.Sleep(300 * time.Millisecond)
	if v := dump(t, cli, "/dst/after-stop"); len(v) != 0 {
		t.Fatalf("a write above the final revision %d reached the mirror after Stop: %v", final, v)
	}
	if cp, _ := d.Poll(time.Now()); cp != final {
		t.Fatalf("checkpoint moved after Stop: %d, final %d", cp, final)
	}
}

// A start revision compacted away on the source is an error of the span that says what to do;
// the checkpoint stays and nothing is written.
func TestDispatcherCompactedStart(t *testing.T) {
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	start := put(t, cli, "/src/a", "1")
	put(t, cli, "/src/a", "2")
	last := put(t, cli, "/src/a", "3")
	if _, err := cli.Compact(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	sink, err := NewFileSink(t.TempDir(), "cf", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	f := newTestFactory(t, etcd.ClientURLs(), &etcdutil.SourceConfig{Prefix: "/src/"}, sink)
	d := newTestDispatcher(t, f, did(1, 1), span.TableSpan(1), start)
	deadline := time.Now().Add(10 * time.Second)
	for d.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	err = d.Err()
	if !errors.Is(err, rpctypes.ErrCompacted) || !strings.Contains(err.Error(), "remove the changefeed and create it again") {
		t.Fatalf("want a compaction error saying what to do, got %v", err)
	}
	put(t, cli, "/src/b", "later")
	time.Sleep(200 * time.Millisecond)
	if cp, _ := d.Poll(time.Now()); int64(cp) != start {
		t.Fatalf("checkpoint %d moved past the compacted start %d", cp, start)
	}
	if recs, _ := ReadFileSink(sink.dir, "cf"); len(recs) != 0 {
		t.Fatalf("a compacted span wrote %d records", len(recs))
	}
}

// An unreachable source is an error naming its endpoints; the dispatcher keeps trying.
func TestDispatcherUnreachableSource(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := "http://" + l.Addr().String()
	_ = l.Close() // nothing listens there now
	sink, err := NewFileSink(t.TempDir(), "cf", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	f := newTestFactory(t, []string{ep}, &etcdutil.SourceConfig{Prefix: "/src/"}, sink)
	d := newTestDispatcher(t, f, did(1, 1), span.TableSpan(1), 5)
	deadline := time.Now().Add(10 * time.Second)
	for d.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := d.Err(); err == nil || !strings.Contains(err.Error(), ep) {
		t.Fatalf("want an error naming %s, got %v", ep, err)
	}
	if cp, err := d.Stop(time.Now()); err != nil || cp != 5 {
		t.Fatalf("Stop: %d, %v; want the start revision 5", cp, err)
	}
}

// A target etcd that goes down holds the checkpoint and shows as the span's error; once it is
// back, the dispatcher resumes on its own and the mirror catches up.
func TestDispatcherMirrorTargetDown(t *testing.T) {
	src := embedetcd.StartForTest(t)
	cli := src.Client(t)
	dir := t.TempDir()
	tcfg := embedetcd.Config{Dir: dir, ClientURL: "http://127.0.0.1:24595", PeerURL: "http://127.0.0.1:24596", TickMs: 10, ElectionMs: 100}
	target, err := embedetcd.Start(tcfg)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := clientv3.New(clientv3.Config{Endpoints: target.ClientURLs(), DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = dst.Close() }()
	ms, err := NewMirrorSink(MirrorConfig{Client: dst, FenceRoot: FenceRoot("c", "cf"), SourcePrefix: "/src/", DestPrefix: "/dst/",
		WriteTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f := newTestFactory(t, src.ClientURLs(), &etcdutil.SourceConfig{Prefix: "/src/"}, ms)
	d := newTestDispatcher(t, f, did(1, 1), span.TableSpan(1), rev(t, cli))
	first := put(t, cli, "/src/a", "1")
	waitCheckpoint(t, d, first)
	if err := target.Close(); err != nil {
		t.Fatal(err)
	}
	var last int64
	for i := range 20 {
		last = put(t, cli, fmt.Sprintf("/src/k%d", i), fmt.Sprint(i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := d.Err(); err == nil || !strings.Contains(err.Error(), "127.0.0.1:24595") {
		t.Fatalf("target down: want an error naming it, got %v", err)
	}
	if err := f.Flush(); err == nil {
		t.Fatal("target down: the factory's Flush reports no sink failure")
	}
	if cp, _ := d.Poll(time.Now()); int64(cp) >= last {
		t.Fatalf("checkpoint %d reached %d while the target was down", cp, last)
	}
	target, err = embedetcd.Start(tcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = target.Close() }()
	waitCheckpointFor(t, d, last, 30*time.Second)
	if err := d.Err(); err != nil {
		t.Fatalf("target back: still %v", err)
	}
	got := dump(t, dst, "/dst/")
	if len(got) != 21 || got["/dst/k19"] != "19" {
		t.Fatalf("mirror after the outage: %v", got)
	}
}

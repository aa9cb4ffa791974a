package etcdcdc

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/span"
)

// TestProgressRequestsSafe: only the versions with the fix of etcd-io/etcd#15220 are trusted
// with progress requests; anything unreadable is not.
func TestProgressRequestsSafe(t *testing.T) {
	for v, want := range map[string]bool{
		"3.4.23": false, "3.4.24": true, "3.4.37": true, "v3.4.24": true, "3.4.24+dfsg": true,
		"3.5.0": false, "3.5.7": false, "3.5.8": true, "3.5.21": true, "3.5.9-rc.0": true,
		"3.6.0": true, "3.6.16": true, "3.7.0": true, "4.0.0": true,
		"3.3.27": false, "2.3.8": false, "3.4": false, "": false, "3.x.1": false, "three": false, "3.4.-1": false,
	} {
		if got := progressRequestsSafe(v); got != want {
			t.Errorf("progressRequestsSafe(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestJudgeVersions: progress requests only when every endpoint reported a fixed etcd; an
// endpoint that reported an unfixed one is the verdict (and its warning) even while another has
// not answered yet.
func TestJudgeVersions(t *testing.T) {
	eps := []string{"a", "b"}
	for _, c := range []struct {
		versions map[string]string
		want     versionVerdict
		unknown  int
	}{
		{map[string]string{"a": "3.6.16", "b": "3.5.8"}, verdictFixed, 0},
		{map[string]string{"a": "3.6.16"}, verdictUnknown, 1},
		{map[string]string{}, verdictUnknown, 2},
		{map[string]string{"b": "3.4.23"}, verdictUnfixed, 1},
		{map[string]string{"a": "3.4.23"}, verdictUnfixed, 1},
		{map[string]string{"a": "3.4.23", "b": "3.6.0"}, verdictUnfixed, 0},
	} {
		got, unknown := judgeVersions(eps, c.versions)
		if got != c.want || len(unknown) != c.unknown {
			t.Errorf("versions %v: verdict %d with %v unknown, want %d with %d", c.versions, got, unknown, c.want, c.unknown)
		}
	}
}

// countingKV counts the transactions quietRange sends.
type countingKV struct {
	*fakeKV
	txns int
}

func (c *countingKV) Txn(ctx context.Context) clientv3.Txn { c.txns++; return c.fakeKV.Txn(ctx) }

// TestReadProgressProvesOnlyAQuietRange drives readProgress the way a read tick does, against a
// history with the watch at revision 10: it moves the checkpoint to the head only when no key of
// the range changed above 10, and reads nothing while the watch is delivering.
func TestReadProgressProvesOnlyAQuietRange(t *testing.T) {
	for _, c := range []struct {
		name    string
		history []histEvent
		moved   bool // the watch delivered since the last tick
		want    int64
	}{
		{name: "other ranges only", history: []histEvent{{"/a/x", 5, false}, {"/b/y", 14, false}, {"/b/y", 20, false}}, want: 20},
		{name: "a put not delivered", history: []histEvent{{"/a/x", 5, false}, {"/a/x", 15, false}, {"/b/y", 20, false}}},
		{name: "a new key not delivered", history: []histEvent{{"/a/y", 12, false}, {"/b/y", 20, false}}},
		{name: "a delete not delivered", history: []histEvent{{"/a/x", 5, false}, {"/a/x", 15, true}, {"/b/y", 20, false}}},
		{name: "the watch is delivering", history: []histEvent{{"/b/y", 20, false}}, moved: true},
		// The one case reads cannot see (progressmode.go): the watch still delivers both events.
		{name: "created and deleted inside the window", history: []histEvent{{"/a/z", 12, false}, {"/a/z", 13, true}, {"/b/y", 20, false}}, want: 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			kv := &countingKV{fakeKV: &fakeKV{history: c.history}}
			g := newProgressGate(10)
			if c.moved {
				g.lastRead = 8
			}
			rng := keyRange{start: []byte("/a/"), end: []byte("/a0")}
			got := readProgress(context.Background(), &clientv3.Client{KV: kv}, rng, zap.NewNop(), g)
			if got != c.want {
				t.Fatalf("readProgress = %d, want %d", got, c.want)
			}
			if c.moved != (kv.txns == 0) {
				t.Fatalf("%d reads with the watch moved %v", kv.txns, c.moved)
			}
			if c.want != 0 && (g.last != c.want || g.lastRead != c.want) {
				t.Fatalf("gate at %d (read at %d) after proving %d", g.last, g.lastRead, c.want)
			}
			if c.moved && g.lastRead != 10 {
				t.Fatalf("the tick did not note where the watch is: lastRead %d", g.lastRead)
			}
		})
	}
}

// TestIdleSpansAdvanceByReads: on a factory that may not ask for progress (an etcd without the
// fix), an idle span's checkpoint still passes writes elsewhere, by reads alone, and a write
// into its range is still written before the checkpoint passes it. Against a real etcd, so the
// transaction's filters and revisions are etcd's own.
func TestIdleSpansAdvanceByReads(t *testing.T) {
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	start := rev(t, cli)
	sink, err := NewFileSink(t.TempDir(), "cf", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFactory(FactoryConfig{Node: "n1", Changefeed: "cf", Source: &etcdutil.SourceConfig{Prefix: "/src/", Endpoints: etcd.ClientURLs()},
		Sink: sink, ProgressInterval: 20 * time.Millisecond, ProbeInterval: 50 * time.Millisecond, pinProgress: pinReads})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	d := newTestDispatcher(t, f, did(1, 1), span.TableSpan(1), start)
	idle := put(t, cli, "/elsewhere", "x")
	waitCheckpointFor(t, d, idle, 5*time.Second)
	in := put(t, cli, "/src/k", "v")
	after := put(t, cli, "/elsewhere", "y")
	waitCheckpointFor(t, d, after, 5*time.Second)
	if n := d.events.Load(); n != 1 {
		t.Fatalf("%d events written, want the put at %d", n, in)
	}
	if !f.mode.byReads.Load() {
		t.Fatal("a pinned factory changed its mode")
	}
	if n := f.streams.asked.Load(); n != 0 {
		t.Fatalf("a factory advancing by reads sent %d progress requests", n)
	}
}

// TestQuietRangeOnRealEtcd checks the transaction against etcd itself: a put in the range
// breaks the quiet of a window it is alive at the end of, a delete of a key alive at the start
// breaks it too, and a window above them is quiet through the revision read at.
func TestQuietRangeOnRealEtcd(t *testing.T) {
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	rng := keyRange{start: []byte("/q/"), end: []byte("/q0")}
	p1 := put(t, cli, "/q/a", "1")
	p2 := put(t, cli, "/q/a", "2")
	d := del(t, cli, "/q/a")
	head := put(t, cli, "/elsewhere", "x")
	for _, c := range []struct {
		from, to, want int64
		quiet          bool
	}{
		{from: p1, to: p2, quiet: false}, // modified and alive at the end
		{from: p1, to: 0, quiet: false},  // alive at the start, deleted: one key fewer
		{from: p2, to: d, quiet: false},
		{from: d, to: 0, want: head, quiet: true},
		{from: d, to: head, want: head, quiet: true},
		// The blind spot (progressmode.go): absent at the start, created and deleted inside.
		{from: p1 - 1, to: 0, want: head, quiet: true},
	} {
		got, quiet := quietRange(context.Background(), cli, rng, zap.NewNop(), c.from, c.to)
		if quiet != c.quiet || got != c.want {
			t.Errorf("quietRange(%d, %d) = %d %v, want %d %v", c.from, c.to, got, quiet, c.want, c.quiet)
		}
	}
}

// TestFactoryTrustsAFixedEtcd: the embedded etcd (3.6) has the fix, so a factory that asks its
// version switches idle spans to progress requests.
func TestFactoryTrustsAFixedEtcd(t *testing.T) {
	etcd := embedetcd.StartForTest(t)
	sink, err := NewFileSink(t.TempDir(), "cf", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	f := newTestFactory(t, etcd.ClientURLs(), &etcdutil.SourceConfig{Prefix: "/src/"}, sink)
	newTestDispatcher(t, f, did(1, 1), span.TableSpan(1), rev(t, etcd.Client(t))) // opens a stream to ask on
	for deadline := time.Now().Add(5 * time.Second); f.mode.byReads.Load(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the factory still advances idle spans by reads against a fixed etcd")
		}
	}
	for deadline := time.Now().Add(5 * time.Second); f.streams.asked.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the factory asks no progress of a fixed etcd")
		}
	}
}

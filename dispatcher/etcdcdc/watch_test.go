package etcdcdc

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// fakeWatcher serves one scripted watch stream, in order, then closes it.
type fakeWatcher struct {
	clientv3.Watcher
	script []clientv3.WatchResponse
}

func (w *fakeWatcher) Watch(context.Context, string, ...clientv3.OpOption) clientv3.WatchChan {
	ch := make(chan clientv3.WatchResponse, len(w.script))
	for _, r := range w.script {
		ch <- r
	}
	close(ch)
	return ch
}

// histEvent is one change in the fake source's history.
type histEvent struct {
	key string
	rev int64
	del bool
}

// fakeKV answers reads from a history the way etcd would: the keys alive at a revision with
// their mod revisions, mod-revision filters pruning the keys, a count ignoring them.
type fakeKV struct {
	clientv3.KV
	history []histEvent
}

func (kv *fakeKV) Get(_ context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	return (*clientv3.GetResponse)(kv.read(clientv3.OpGet(key, opts...))), nil
}

// read answers one range op: at its revision, or at the head when it names none.
func (kv *fakeKV) read(op clientv3.Op) *pb.RangeResponse {
	at := op.Rev()
	alive := map[string]int64{}
	for _, ev := range kv.history {
		if (at != 0 && ev.rev > at) || string(op.KeyBytes()) > ev.key || ev.key >= string(op.RangeBytes()) {
			continue
		}
		if ev.del {
			delete(alive, ev.key)
		} else {
			alive[ev.key] = ev.rev
		}
	}
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: kv.head()}, Count: int64(len(alive))}
	if op.IsCountOnly() {
		return resp
	}
	for k, mod := range alive {
		if (op.MinModRev() == 0 || mod >= op.MinModRev()) && (op.MaxModRev() == 0 || mod <= op.MaxModRev()) {
			resp.Kvs = append(resp.Kvs, &mvccpb.KeyValue{Key: []byte(k), ModRevision: mod})
		}
	}
	return resp
}

// head is the store's revision: the last of the history.
func (kv *fakeKV) head() int64 {
	var h int64
	for _, ev := range kv.history {
		h = max(h, ev.rev)
	}
	return h
}

// Txn answers a transaction of reads (all quietRange sends) the way etcd does: every op of
// Then at the one head revision unless it names its own.
func (kv *fakeKV) Txn(context.Context) clientv3.Txn { return &fakeTxn{kv: kv} }

type fakeTxn struct {
	clientv3.Txn
	kv  *fakeKV
	ops []clientv3.Op
}

func (t *fakeTxn) Then(ops ...clientv3.Op) clientv3.Txn { t.ops = append(t.ops, ops...); return t }

func (t *fakeTxn) Commit() (*clientv3.TxnResponse, error) {
	resp := &clientv3.TxnResponse{Header: &pb.ResponseHeader{Revision: t.kv.head()}, Succeeded: true}
	for _, op := range t.ops {
		if !op.IsGet() {
			return nil, fmt.Errorf("fakeTxn: only reads")
		}
		resp.Responses = append(resp.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: t.kv.read(op)}})
	}
	return resp, nil
}

func created(rev int64) clientv3.WatchResponse {
	return clientv3.WatchResponse{Header: pb.ResponseHeader{Revision: rev}, Created: true}
}

func progressAt(rev int64) clientv3.WatchResponse {
	return clientv3.WatchResponse{Header: pb.ResponseHeader{Revision: rev}}
}

func eventAt(key string, rev int64, del bool) clientv3.WatchResponse {
	typ := mvccpb.PUT
	if del {
		typ = mvccpb.DELETE
	}
	return clientv3.WatchResponse{Header: pb.ResponseHeader{Revision: rev},
		Events: []*clientv3.Event{{Type: typ, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev}}}}
}

// TestWatchTrustsProgressOnlyWhenCaughtUp replays watch streams the way etcd 3.4.23 can
// deliver them (a requested progress notification at the store's revision arriving before
// events at or below it; etcd issue 15220) and checks the checkpoints the watch queues: a
// notification never moves the checkpoint before the watch is caught up to its created
// revision, and not before a later notification confirms it with no older event in between.
func TestWatchTrustsProgressOnlyWhenCaughtUp(t *testing.T) {
	for _, c := range []struct {
		name    string
		start   int64
		history []histEvent
		script  []clientv3.WatchResponse
		want    []int64  // the checkpoints queued, in order
		events  []string // when set, the events queued, in order
	}{
		{
			// The range held /a/x at the start; it changes at 12 and goes at 18, both still to
			// come when two notifications (25, 26) arrive. Reads see that a key alive at the
			// start is gone by 20, so the watch is not caught up; after 18 the window (18, 20]
			// is quiet and 27 (confirmed by 28) is trusted.
			name: "catching up", start: 10,
			history: []histEvent{{"/a/x", 5, false}, {"/a/x", 12, false}, {"/a/x", 18, true}, {"/b/other", 20, false}},
			script: []clientv3.WatchResponse{created(20), progressAt(25), progressAt(26), eventAt("/a/x", 12, false),
				eventAt("/a/x", 18, true), progressAt(27), progressAt(28)},
			want: []int64{12, 18, 27},
		},
		{
			// A new key /a/y put at 15 and not delivered yet: the reads find a key of the range
			// modified in (10, 20], so 25 and 26 are not trusted.
			name: "a pending put", start: 10,
			history: []histEvent{{"/a/y", 15, false}, {"/b/other", 20, false}},
			script: []clientv3.WatchResponse{created(20), progressAt(25), progressAt(26), eventAt("/a/y", 15, false),
				progressAt(27), progressAt(28)},
			want: []int64{15, 27},
		},
		{
			// Caught up from the start (it started at the created revision), but the answer to
			// a request (35) overtakes an event queued before it (33): 35 is dropped, 36 is
			// confirmed by 37.
			name: "overtaken when synced", start: 30,
			history: []histEvent{{"/a/z", 33, false}},
			script:  []clientv3.WatchResponse{created(30), progressAt(35), eventAt("/a/z", 33, false), progressAt(36), progressAt(37)},
			want:    []int64{33, 36},
		},
		{
			// A confirmed notification (35) can still overtake an event (34) on an unfixed
			// etcd: the late event is written all the same (the checkpoint already said 35, and
			// nothing above it is lost), never dropped as if it were below the start.
			name: "late after a confirmed notification", start: 30,
			history: []histEvent{{"/a/z", 34, false}},
			script: []clientv3.WatchResponse{created(30), progressAt(35), progressAt(36), eventAt("/a/z", 34, false),
				progressAt(37), progressAt(38)},
			want:   []int64{35, 35, 37},
			events: []string{"/a/z@34"},
		},
		{
			// An idle span started at the head advances, one notification behind.
			name: "idle at the head", start: 40,
			script: []clientv3.WatchResponse{created(40), progressAt(40), progressAt(41), progressAt(42)},
			want:   []int64{41},
		},
		{
			// An event at or above the created revision proves the catch-up without reads.
			name: "caught up by an event", start: 10,
			history: []histEvent{{"/a/x", 5, false}, {"/a/x", 21, true}},
			script:  []clientv3.WatchResponse{created(20), progressAt(22), eventAt("/a/x", 21, true), progressAt(23), progressAt(24)},
			want:    []int64{21, 23},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			kv := &fakeKV{history: c.history}
			w := &fakeWatcher{script: c.script}
			streams := &streamPicker{}
			for i := range streams.watchers {
				streams.watchers[i] = w
			}
			f := &Factory{cli: &clientv3.Client{Watcher: w, KV: kv}, streams: streams, mode: newProgressMode()}
			f.mode.pin(false)
			d := &Dispatcher{f: f,
				rng: keyRange{start: []byte("/a/"), end: []byte("/a0")}, log: zap.NewNop()}
			d.readCtx, d.cancelRead = context.WithCancel(context.Background())
			defer d.cancelRead()
			var out collectedBatches
			last, err := d.watch(c.start, &out)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			var delivered []string
			for _, b := range out {
				got = append(got, b.through)
				for _, ev := range b.events {
					delivered = append(delivered, fmt.Sprintf("%s@%d", ev.Key, ev.Revision))
				}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("checkpoints queued %v, want %v (events %v)", got, c.want, delivered)
			}
			if c.events != nil && !reflect.DeepEqual(delivered, c.events) {
				t.Fatalf("events queued %v, want %v", delivered, c.events)
			}
			if last != c.want[len(c.want)-1] {
				t.Fatalf("watch ended at %d, want %d", last, c.want[len(c.want)-1])
			}
		})
	}
}

// collectedBatches is a batchSink that keeps every batch pushed, in order.
type collectedBatches []batch

func (c *collectedBatches) push(b batch) bool { *c = append(*c, b); return true }
func (c *collectedBatches) flush() bool       { return true }

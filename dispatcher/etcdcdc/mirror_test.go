package etcdcdc

import (
	"context"
	"errors"
	"fmt"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

func newTestMirror(t *testing.T, cli *clientv3.Client) *MirrorSink {
	t.Helper()
	ms, err := NewMirrorSink(MirrorConfig{Client: cli, FenceRoot: FenceRoot("c", "cf"), SourcePrefix: "/src/", DestPrefix: "/dst/"})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func owner(id heartbeatpb.DispatcherID, s heartbeatpb.TableSpan) Owner {
	return Owner{Node: "n1", Changefeed: "cf", ID: id, Span: s}
}

func ev(k, v string, rev int64) Event { return Event{Key: []byte(k), Value: []byte(v), Revision: rev} }

// A successor that claims the span (the same span, or an overlapping piece of it) fences the
// old owner in the target itself: the old owner's next write is refused and changes nothing.
// An older dispatcher cannot claim a span a newer one holds.
func TestMirrorFenceRefusesDeposedWriter(t *testing.T) {
	ctx := context.Background()
	cli := embedetcd.StartForTest(t).Client(t)
	ms := newTestMirror(t, cli)
	whole := span.TableSpan(1)
	halves := splitTable(t, 2)

	old := ms.Open(owner(did(1, 1), whole))
	if err := old.Write(ctx, []Event{ev("/src/a", "1", 10)}, 10); err != nil {
		t.Fatal(err)
	}
	// A successor of the next epoch claims one half; the deposed owner tries to write.
	succ := ms.Open(owner(did(2, 1), halves[1]))
	if err := succ.Write(ctx, nil, 10); err != nil {
		t.Fatal(err)
	}
	err := old.Write(ctx, []Event{ev("/src/zzz", "late", 12)}, 12)
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("deposed writer: want ErrFenced, got %v", err)
	}
	if got := dump(t, cli, "/dst/zzz"); len(got) != 0 {
		t.Fatalf("the deposed writer's late write landed: %v", got)
	}
	if err := ms.Err(); err != nil {
		t.Fatalf("a deposed writer made the whole sink fail: %v", err)
	}
	// Its other half was fenced too: the whole span's fence is gone.
	if err := old.Write(ctx, []Event{ev("/src/a", "late", 12)}, 12); !errors.Is(err, ErrFenced) {
		t.Fatalf("deposed writer, second try: want ErrFenced, got %v", err)
	}
	// An older dispatcher (a stale create) cannot take the span back.
	stale := ms.Open(owner(did(1, 7), halves[1]))
	if err := stale.Write(ctx, []Event{ev("/src/zzz", "stale", 13)}, 13); !errors.Is(err, ErrFenced) {
		t.Fatalf("older claimant: want ErrFenced, got %v", err)
	}
	// The successor writes on.
	if err := succ.Write(ctx, []Event{ev("/src/zzz", "new", 12)}, 12); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, cli, "/dst/"); got["/dst/zzz"] != "new" || got["/dst/a"] != "1" {
		t.Fatalf("mirror %v", got)
	}
}

// Replaying events (a successor starting below what its predecessor wrote) leaves the mirror
// as one pass does, and a key repeated inside one batch keeps its revision order.
func TestMirrorReplayIsIdempotent(t *testing.T) {
	ctx := context.Background()
	cli := embedetcd.StartForTest(t).Client(t)
	ms := newTestMirror(t, cli)
	var events []Event
	for i := range 400 {
		k := fmt.Sprintf("/src/k%02d", i%30)
		e := ev(k, fmt.Sprint(i), int64(100+i))
		if i%6 == 5 {
			e = Event{Key: []byte(k), Delete: true, Revision: int64(100 + i)}
		}
		events = append(events, e)
	}
	w := ms.Open(owner(did(1, 1), span.TableSpan(1)))
	if err := w.Write(ctx, events, 499); err != nil {
		t.Fatal(err)
	}
	once := dump(t, cli, "/dst/")
	want := map[string]string{}
	for _, e := range events {
		k := "/dst/" + string(e.Key[len("/src/"):])
		if e.Delete {
			delete(want, k)
		} else {
			want[k] = string(e.Value)
		}
	}
	if err := sameMaps(want, once); err != nil {
		t.Fatalf("one pass: %v", err)
	}
	// A successor replays from the middle, then everything again.
	w2 := ms.Open(owner(did(1, 2), span.TableSpan(1)))
	if err := w2.Write(ctx, events[150:], 499); err != nil {
		t.Fatal(err)
	}
	if err := w2.Write(ctx, events, 499); err != nil {
		t.Fatal(err)
	}
	if err := sameMaps(want, dump(t, cli, "/dst/")); err != nil {
		t.Fatalf("after replays: %v", err)
	}
}

// A value near etcd's request limit goes in a transaction of its own, after what came before.
func TestMirrorLargeValue(t *testing.T) {
	ctx := context.Background()
	cli := embedetcd.StartForTest(t).Client(t)
	w := newTestMirror(t, cli).Open(owner(did(1, 1), span.TableSpan(1)))
	big := string(make([]byte, maxTxnBytes+10))
	events := []Event{ev("/src/big", big, 5), ev("/src/a", "1", 6), ev("/src/big2", big, 7)}
	if err := w.Write(ctx, events, 7); err != nil {
		t.Fatal(err)
	}
	got := dump(t, cli, "/dst/")
	if len(got["/dst/big"]) != len(big) || got["/dst/a"] != "1" || len(got["/dst/big2"]) != len(big) {
		t.Fatalf("mirror holds %d keys", len(got))
	}
}

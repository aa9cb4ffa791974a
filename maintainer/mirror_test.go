package maintainer

import (
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// digestOf is the node side's digest: the XOR over the set, computed from scratch.
func digestOf(set map[heartbeatpb.DispatcherID]heartbeatpb.ComponentState) *heartbeatpb.SetDigest {
	d := &heartbeatpb.SetDigest{Count: uint64(len(set))}
	for id, st := range set {
		d.Hash ^= heartbeatpb.DigestEntry(id, st)
	}
	return d
}

// TestMirrorFollowsStatuses: a mirror fed one status at a time matches the digest of the set
// those statuses leave, and only that set.
func TestMirrorFollowsStatuses(t *testing.T) {
	nm := newNodeMirror()
	set := map[heartbeatpb.DispatcherID]heartbeatpb.ComponentState{}
	step := func(id heartbeatpb.DispatcherID, st heartbeatpb.ComponentState) {
		nm.apply(&heartbeatpb.DispatcherStatus{Id: id, Span: span.TableSpan(1), State: st})
		if st == heartbeatpb.StateRemoved {
			delete(set, id)
		} else {
			set[id] = st
		}
		if !nm.matches(digestOf(set)) {
			t.Fatalf("after %v %v: mirror does not match the set %v", id, st, set)
		}
	}
	a, b, c := heartbeatpb.DispatcherID{Hi: 1, Lo: 1}, heartbeatpb.DispatcherID{Hi: 1, Lo: 2}, heartbeatpb.DispatcherID{Hi: 2, Lo: 1}
	step(a, heartbeatpb.StateWorking)
	step(b, heartbeatpb.StateWorking)
	step(a, heartbeatpb.StateWorking) // a repeated status changes nothing
	step(c, heartbeatpb.StateWorking)
	step(a, heartbeatpb.StateStopped)
	step(a, heartbeatpb.StateRemoved)
	step(b, heartbeatpb.StateRemoved)

	// Sets that differ in a state, a member or the count do not match.
	other := map[heartbeatpb.DispatcherID]heartbeatpb.ComponentState{c: heartbeatpb.StateStopped}
	if nm.matches(digestOf(other)) {
		t.Fatal("a set with another state matches")
	}
	other = map[heartbeatpb.DispatcherID]heartbeatpb.ComponentState{c: heartbeatpb.StateWorking, a: heartbeatpb.StateWorking}
	if nm.matches(digestOf(other)) {
		t.Fatal("a set with one more member matches")
	}
	d := digestOf(set)
	d.Count++
	if nm.matches(d) || nm.matches(nil) {
		t.Fatal("a wrong count or no digest matches")
	}
}

// TestWatermarkSweepsSpaced: matching heartbeats advance the node's spans at most once per
// sweepInterval, however often they come (each pass visits every span of the node, so a node
// heartbeating on every tick during placement made the maintainer's work heartbeats times
// spans); the next matching heartbeat after the interval carries the newer watermark through.
func TestWatermarkSweepsSpaced(t *testing.T) {
	db := newSpanDB(0)
	d := heartbeatpb.DispatcherID{Hi: 1, Lo: 1}
	sid := db.insertReplicating(span.TableSpan(1), heartbeatpb.ModeDefault, "n1", d, 100)
	ms := nodeMirrors{}
	ms.reset("n1", []heartbeatpb.DispatcherStatus{{Id: d, Span: span.TableSpan(1), State: heartbeatpb.StateWorking}})
	digest := digestOf(map[heartbeatpb.DispatcherID]heartbeatpb.ComponentState{d: heartbeatpb.StateWorking})
	beat := watermarkBeat(db, ms, digest, sid)
	if got := beat(0, 200); got != 200 {
		t.Fatalf("first matching heartbeat: checkpoint %d, want 200", got)
	}
	for i := 1; i < 5; i++ { // every 100ms, as a node placing spans sends them
		if got := beat(time.Duration(i)*100*time.Millisecond, 200+uint64(i)); got != 200 {
			t.Fatalf("heartbeat %d within the interval: checkpoint %d, want 200 (no new sweep)", i, got)
		}
	}
	if got := beat(sweepInterval, 300); got != 300 {
		t.Fatalf("heartbeat after the interval: checkpoint %d, want 300", got)
	}
}

// TestWatermarkSweepsStretchWithSize: a node serving many spans is swept less often, by
// sweepPerSpan a span (60,000 spans: every 600ms), so the passes cost the maintainer's loop
// the same share of its time at any size.
func TestWatermarkSweepsStretchWithSize(t *testing.T) {
	const n = 60000
	db := newSpanDB(n)
	states := make(map[heartbeatpb.DispatcherID]heartbeatpb.ComponentState, n)
	statuses := make([]heartbeatpb.DispatcherStatus, 0, n)
	var first spanID
	for i := 1; i <= n; i++ {
		d := heartbeatpb.DispatcherID{Hi: 1, Lo: uint64(i)}
		sid := db.insertReplicating(span.TableSpan(int64(i)), heartbeatpb.ModeDefault, "n1", d, 100)
		if i == 1 {
			first = sid
		}
		states[d] = heartbeatpb.StateWorking
		statuses = append(statuses, heartbeatpb.DispatcherStatus{Id: d, Span: span.TableSpan(int64(i)), State: heartbeatpb.StateWorking})
	}
	ms := nodeMirrors{}
	ms.reset("n1", statuses)
	digest := digestOf(states)
	beat := watermarkBeat(db, ms, digest, first)
	if got := beat(0, 200); got != 200 {
		t.Fatalf("first matching heartbeat: checkpoint %d, want 200", got)
	}
	if got := beat(500*time.Millisecond, 300); got != 200 {
		t.Fatalf("heartbeat at 500ms: checkpoint %d, want 200 (60,000 spans are swept every 600ms)", got)
	}
	if got := beat(600*time.Millisecond, 400); got != 400 {
		t.Fatalf("heartbeat at 600ms: checkpoint %d, want 400", got)
	}
}

// watermarkBeat returns a function that sends n1's matching heartbeat (the set digest) with a
// default-mode watermark mark at t0+at and returns span sid's checkpoint after it.
func watermarkBeat(db *spanDB, ms nodeMirrors, digest *heartbeatpb.SetDigest, sid spanID) func(at time.Duration, mark uint64) uint64 {
	out := newOutbox(func(string) bool { return true })
	return func(at time.Duration, mark uint64) uint64 {
		hb := &heartbeatpb.HeartBeatRequest{Digest: digest,
			Watermarks: []heartbeatpb.Watermark{{Mode: heartbeatpb.ModeDefault, CheckpointTs: mark}}}
		ms.applyWatermarks(db, out, zap.NewNop(), "n1", hb, t0.Add(at))
		return db.checkpoint(sid)
	}
}

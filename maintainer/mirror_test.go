package maintainer

import (
	"testing"

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

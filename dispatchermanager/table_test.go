package dispatchermanager

import (
	"errors"
	"time"
	"unsafe"

	"testing"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// TestTableListFollowsMap adds and drops dispatchers in a pseudo-random order and checks after
// each step that the table's list (what a poll walks) holds exactly the map's entries, each at
// the index it records, and that the set digest is the one the map implies.
func TestTableListFollowsMap(t *testing.T) {
	tbl := dispatcherTable{log: zap.NewNop(), dispatchers: map[heartbeatpb.DispatcherID]*dispatcherEntry{},
		working: newWorkingIndex(), records: map[heartbeatpb.OperatorID][]heartbeatpb.DispatcherID{}}
	check := func(step int) {
		t.Helper()
		if len(tbl.all) != len(tbl.dispatchers) {
			t.Fatalf("step %d: list holds %d entries, map %d", step, len(tbl.all), len(tbl.dispatchers))
		}
		var hash uint64
		for pos, e := range tbl.all {
			if int(e.pos) != pos || tbl.dispatchers[e.id] != e {
				t.Fatalf("step %d: list[%d] = %s at recorded index %d, in the map: %v", step, pos,
					span.String(e.span), e.pos, tbl.dispatchers[e.id] == e)
			}
			hash ^= heartbeatpb.DigestEntry(e.id, e.state)
		}
		if hash != tbl.hash {
			t.Fatalf("step %d: digest %x, the entries make %x", step, tbl.hash, hash)
		}
	}
	rng := uint64(7)
	next := func(n int) int { rng = rng*6364136223846793005 + 1442695040888963407; return int(rng>>33) % n }
	const tables = 500
	for step := 0; step < 5000; step++ {
		table := int64(next(tables) + 1)
		id := heartbeatpb.DispatcherID{Hi: 1, Lo: uint64(table)}
		if e := tbl.dispatchers[id]; e != nil {
			tbl.working.remove(e) // as a stop does first
			tbl.dropDispatcher(e)
		} else {
			cfg := heartbeatpb.DispatcherConfig{Id: id, Span: span.TableSpan(table), StartTs: 100}
			tbl.addWorking(&fakeDispatcher{cfg: cfg, checkpoint: 100}, cfg)
		}
		check(step)
	}
}

// The side maps follow the entries: a removal record is closed only by the operator that
// stopped this dispatcher (not by one that stopped an earlier dispatcher of the same ID), a
// replacement does not inherit its predecessor's error, and a dropped dispatcher leaves nothing
// behind in them.
func TestTableSideMapsFollowEntries(t *testing.T) {
	tbl := dispatcherTable{log: zap.NewNop(), dispatchers: map[heartbeatpb.DispatcherID]*dispatcherEntry{},
		working: newWorkingIndex(), records: map[heartbeatpb.OperatorID][]heartbeatpb.DispatcherID{}}
	f := &fakeFactory{}
	id := heartbeatpb.DispatcherID{Hi: 1, Lo: 9}
	cfg := heartbeatpb.DispatcherConfig{Id: id, Span: span.TableSpan(9), StartTs: 100}
	op1, op2 := heartbeatpb.OperatorID{Epoch: 1, Seq: 1}, heartbeatpb.OperatorID{Epoch: 1, Seq: 2}
	now := time.Unix(1, 0)

	first := &erringDispatcher{fakeDispatcher: fakeDispatcher{cfg: cfg, f: f}, err: errors.New("source gone")}
	e := tbl.addWorking(first, cfg)
	if !tbl.pollErr(e) {
		t.Fatal("the first dispatcher's error is not news")
	}
	if err := tbl.stopDispatcher(e, op1, now); err != nil {
		t.Fatal(err)
	}
	second := tbl.addWorking(&fakeDispatcher{cfg: cfg, f: f}, cfg) // same ID, created anew
	if got := tbl.status(second, "").Error; got != "" {
		t.Fatalf("a replacement inherited its predecessor's error %q", got)
	}
	if err := tbl.stopDispatcher(second, op2, now); err != nil {
		t.Fatal(err)
	}
	tbl.dropRecord(op1, id)
	if tbl.dispatchers[id] != second {
		t.Fatal("the acknowledgement of an earlier operator closed the removal record of a later one")
	}
	tbl.dropRecord(op2, id)
	if tbl.dispatchers[id] != nil {
		t.Fatal("the removal record outlived its operator's acknowledgement")
	}
	if len(tbl.errs) != 0 || len(tbl.stoppedBy) != 0 {
		t.Fatalf("a dropped dispatcher left side entries: errs %v, stoppedBy %v", tbl.errs, tbl.stoppedBy)
	}
}

// A worker keeps one entry per dispatcher, a million at the bench's largest size, within a
// budget of 1 KiB per dispatcher in all: an entry that outgrows the 128 B size class costs
// 48 MB there (the next class is 144 B).
func TestDispatcherEntrySize(t *testing.T) {
	if got := unsafe.Sizeof(dispatcherEntry{}); got > 128 {
		t.Fatalf("dispatcherEntry is %d B, over 128", got)
	}
}

package dispatchermanager

import (
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
			if e.pos != pos || tbl.dispatchers[e.id] != e {
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

package maintainer

import (
	"reflect"
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

func loadsOf(counts ...int) []nodeLoad {
	out := make([]nodeLoad, len(counts))
	for i, c := range counts {
		out[i] = nodeLoad{node: string(rune('a' + i)), spans: c, free: 100}
	}
	return out
}

func TestPlanTotalMoves(t *testing.T) {
	cases := []struct {
		name      string
		def, redo []int
		wantDef   []moveCount
		wantRedo  []moveCount
	}{
		{"already even", []int{2, 2, 2}, []int{2, 2, 2}, nil, nil},
		// Each mode within one, but node a has the extra of both: one moves away.
		{"extras on one node", []int{3, 2, 2}, []int{3, 2, 2}, []moveCount{{from: "a", to: "b", n: 1}}, nil},
		{"only redo can move", []int{2, 2}, []int{3, 1}, nil, []moveCount{{from: "a", to: "b", n: 1}}},
		{"one node", []int{5}, []int{5}, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, r := planTotalMoves(loadsOf(tc.def...), loadsOf(tc.redo...), 10)
			if !reflect.DeepEqual(d, tc.wantDef) || !reflect.DeepEqual(r, tc.wantRedo) {
				t.Fatalf("got %v / %v, want %v / %v", d, r, tc.wantDef, tc.wantRedo)
			}
		})
	}
}

func TestGroupMoves(t *testing.T) {
	got := groupMoves([]moveCount{{"a", "b", 1}, {"a", "c", 1}, {"a", "b", 2}, {"d", "c", 1}, {"a", "c", 1}})
	want := []moveCount{{"a", "b", 3}, {"a", "c", 2}, {"d", "c", 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestNodePicker(t *testing.T) {
	p := newNodePicker([]nodeLoad{{node: "a", spans: 5, free: 1}, {node: "b", spans: 1, free: 2}, {node: "c", spans: 2, free: 0}})
	// Least loaded first; a node taking several children uses one operator slot.
	if got := p.pickN(3); !reflect.DeepEqual(got, []string{"b", "b", "b"}) {
		t.Fatalf("first pick %v", got)
	}
	if got := p.pickN(2); !reflect.DeepEqual(got, []string{"b", "a"}) {
		t.Fatalf("second pick %v", got)
	}
	if got := p.pickN(1); got != nil {
		t.Fatalf("no free slot left, got %v", got)
	}
}

func TestPlaceAbsentFollowsTwins(t *testing.T) {
	nodes := []nodeLoad{{node: "a", spans: 0, free: 10}, {node: "b", spans: 0, free: 1}}
	// 0 and 1 are twins, 2 and 3 too; b has one slot.
	got := placeAbsent([]spanID{10, 11, 12, 13}, nodes, 4, []int{-1, 0, -1, 2})
	want := []placement{{10, "a"}, {11, "a"}, {12, "b"}, {13, "a"}} // 13's twin's node is full
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := placeAbsent([]spanID{10, 11}, nodes, 2, nil); !reflect.DeepEqual(got, []placement{{10, "a"}, {11, "b"}}) {
		t.Fatalf("without twins: %v", got)
	}
}

// TestLoadStreaks: only LoadReports reports in a row past a threshold mark a span hot or cold,
// and one report the other way resets the streak.
func TestLoadStreaks(t *testing.T) {
	cfg := Config{ClusterID: "c1", Changefeed: "cf", SelfNode: "n1", Epoch: 5, LoadReports: 3,
		ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf", SplitLoadThreshold: 1000, MergeLoadThreshold: 100}}
	m, err := New(cfg, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	sid := m.db.insertReplicating(span.TableSpan(1), heartbeatpb.ModeDefault, "n1", heartbeatpb.DispatcherID{Hi: 1, Lo: 1}, 100)
	steps := []struct {
		load      uint64
		hot, cold bool
	}{
		{2000, false, false}, {2000, false, false}, {500, false, false}, // reset by a normal report
		{2000, false, false}, {2000, false, false}, {2000, true, false},
		{50, false, false}, {50, false, false}, {50, false, true}, {50, false, true},
	}
	for i, s := range steps {
		m.loads.observe(m.cfg.ChangefeedConfig, m.cfg.LoadReports, sid, s.load)
		_, hot := m.loads.hot[sid]
		cold := m.loads.isCold(sid)
		if hot != s.hot || cold != s.cold {
			t.Fatalf("report %d (load %d): hot=%v cold=%v, want %v %v", i, s.load, hot, cold, s.hot, s.cold)
		}
	}
	if c := mergeCap(m.cfg.ChangefeedConfig); c != 750 {
		t.Fatalf("merge cap %d, want 3/4 of the split threshold", c)
	}
	// A cooling table is skipped until its time has come.
	m.loads.coolDown(1, t0.Add(time.Second))
	if !m.loads.coolingDown(1, t0) || m.loads.coolingDown(1, t0.Add(time.Second)) {
		t.Fatal("cool-down not measured with now")
	}
}

package maintainer

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
)

// recorder is a starter that records what a scheduler decides and changes nothing; refuse
// makes it refuse the moves to one node, as a controller at its limit would.
type recorder struct {
	intents []string
	refuse  string
}

func (r *recorder) add(p placement, _ time.Time) bool {
	r.intents = append(r.intents, fmt.Sprintf("add %d %s", p.span, p.node))
	return true
}

func (r *recorder) move(sid spanID, dest string, _ time.Time) bool {
	if dest == r.refuse {
		return false
	}
	r.intents = append(r.intents, fmt.Sprintf("move %d %s", sid, dest))
	return true
}

func (r *recorder) split(sid spanID, children []heartbeatpb.TableSpan, nodes []string, _ time.Time) bool {
	r.intents = append(r.intents, fmt.Sprintf("split %d %d %v", sid, len(children), nodes))
	return true
}

func (r *recorder) merge(run []spanID, node string, _ time.Time) bool {
	r.intents = append(r.intents, fmt.Sprintf("merge %v %s", run, node))
	return true
}

func (r *recorder) takeAbsent(int) []spanID   { return nil }
func (r *recorder) requeue(spanID)            {}
func (r *recorder) retire(spanID)             {}
func (r *recorder) notHot(spanID)             {}
func (r *recorder) coolDown(int64, time.Time) {}

// viewOf builds a read-only view of spans replicating as placed (node per table 1..n).
func viewOf(t *testing.T, placed []string, ready ...string) (schedView, *nodeSet) {
	t.Helper()
	cfg := &Config{ScheduleBatch: 10, MaxOperators: 100, MaxOperatorsPerNode: 100,
		ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf"}}
	db := newSpanDB(0)
	for i, n := range placed {
		db.insertReplicating(span.TableSpan(int64(i+1)), heartbeatpb.ModeDefault, n, heartbeatpb.DispatcherID{Hi: 1, Lo: uint64(i + 1)}, 100)
	}
	nodes := newNodeSet()
	for _, n := range ready {
		nodes.live[n] = &nodeInfo{state: nodeReady}
	}
	ctl := operator.NewController(operator.ControllerConfig{MaxPerNode: 100, MaxTotal: 100})
	return schedView{cfg: cfg, db: db, nodes: &nodes, ctl: ctl, loads: &loadTracker{}, tables: &tableChanges{}}, &nodes
}

// TestSchedulersDecideFromTheView: the drain and balance schedulers turn a view into intents
// and act only through the starter (the recorder changes nothing, so the view is unchanged).
func TestSchedulersDecideFromTheView(t *testing.T) {
	v, nodes := viewOf(t, []string{"a", "a", "a", "b"}, "a", "b", "c")
	rec := &recorder{}
	balance(v, rec, t0)
	if want := []string{"move 0 c"}; !reflect.DeepEqual(rec.intents, want) {
		t.Fatalf("balance intents %v, want %v", rec.intents, want)
	}
	if v.db.counts != [numStates]int{0, 0, 4} {
		t.Fatalf("a scheduler changed the span DB: %v", v.db.counts)
	}

	nodes.drained = map[string]bool{"a": true}
	rec = &recorder{}
	drain(v, rec, t0)
	if want := []string{"move 0 c", "move 1 b", "move 2 c"}; !reflect.DeepEqual(rec.intents, want) {
		t.Fatalf("drain intents %v, want %v", rec.intents, want)
	}
	// A round starts at most ScheduleBatch moves; a refused start ends it (the next tick goes on).
	v.cfg.ScheduleBatch = 2
	rec = &recorder{}
	drain(v, rec, t0)
	if want := []string{"move 0 c", "move 1 b"}; !reflect.DeepEqual(rec.intents, want) {
		t.Fatalf("bounded drain intents %v, want %v", rec.intents, want)
	}
	rec = &recorder{refuse: "b"}
	drain(v, rec, t0)
	if want := []string{"move 0 c"}; !reflect.DeepEqual(rec.intents, want) {
		t.Fatalf("bounded drain intents %v, want %v", rec.intents, want)
	}
}

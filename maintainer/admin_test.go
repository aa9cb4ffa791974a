package maintainer

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/dispatcher/sinkcheck"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
	"github.com/tidemark/tidemark/ts"
)

// newAdminSim is a loss-free simulation of three nodes and 9 tables (redo on: 18 spans), run
// until every span replicates.
func newAdminSim(t *testing.T) *sim {
	t.Helper()
	s := &sim{t: t, rng: rand.New(rand.NewSource(1)), now: t0, nodes: make(map[string]*simNode),
		reached: make(map[spanKeyMode]uint64)}
	cfg := testConfig()
	cfg.ChangefeedConfig.Redo = true
	cfg.ChangefeedConfig.Tables = nil
	for i := int64(1); i <= 9; i++ {
		cfg.ChangefeedConfig.Tables = append(cfg.ChangefeedConfig.Tables, heartbeatpb.TableConfig{TableId: i})
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		s.addNode(id)
	}
	s.failover(cfg)
	s.settle(18)
	return s
}

// settle steps until want spans replicate with no operator in flight.
func (s *sim) settle(want int) {
	s.t.Helper()
	for i := 0; i < 100; i++ {
		s.step()
		st := s.m.Status()
		if st.Spans["replicating"] == want && len(st.Operators) == 0 {
			return
		}
	}
	s.t.Fatalf("not settled: %+v", s.m.Status().Spans)
}

// adminResult steps until the request is answered.
func (s *sim) adminResult(id string) AdminResult {
	s.t.Helper()
	for i := 0; i < 50; i++ {
		for _, r := range s.m.TakeAdminResults() {
			if r.ID == id {
				return r
			}
		}
		s.step()
	}
	s.t.Fatalf("admin request %s never answered", id)
	return AdminResult{}
}

// nodeOf returns the nodes serving table's whole-table span, default mode first.
func (s *sim) nodesOf(table int64) []string {
	var out []string
	for _, mode := range []string{"default", "redo"} {
		page, err := s.m.Spans(SpanQuery{Table: table, Mode: mode})
		if err != nil || len(page.Spans) != 1 {
			s.t.Fatalf("spans of table %d: %+v %v", table, page, err)
		}
		out = append(out, page.Spans[0].Node)
	}
	return out
}

func TestAdminMove(t *testing.T) {
	s := newAdminSim(t)
	from := s.nodesOf(4)
	dest := "n1"
	if from[0] == dest {
		dest = "n2"
	}
	s.m.Admin(AdminRequest{ID: "m1", Kind: admin.Move, Spans: []span.Name{{Table: 4}}, Node: dest}, s.now)
	// While the move is in flight, a second request on the span is refused as busy.
	s.m.Admin(AdminRequest{ID: "m2", Kind: admin.Move, Spans: []span.Name{{Table: 4}}, Node: "n3"}, s.now)
	if r := s.adminResult("m2"); r.Outcome != admin.Refused || !strings.Contains(r.Message, "has an operator in flight (OpMove") {
		t.Fatalf("busy move: %+v", r)
	}
	r := s.adminResult("m1")
	if r.Outcome != admin.Done || !strings.Contains(r.Message, "moved span 4") {
		t.Fatalf("move: %+v", r)
	}
	if got := s.nodesOf(4); got[0] != dest || got[1] != dest {
		t.Fatalf("table 4 on %v after the move, want both modes on %s", got, dest)
	}
	s.m.Admin(AdminRequest{ID: "m3", Kind: admin.Move, Spans: []span.Name{{Table: 4}}, Node: dest}, s.now)
	if r := s.adminResult("m3"); r.Outcome != admin.Done || !strings.Contains(r.Message, "already on node") {
		t.Fatalf("repeated move: %+v", r)
	}
}

func TestAdminRefusals(t *testing.T) {
	s := newAdminSim(t)
	before := s.m.Status()
	half := span.Name{Table: 2, Start: span.TableStartKey(2), End: append(span.TableStartKey(2), 0x80)}
	cases := []struct {
		req    AdminRequest
		want   string
		reason admin.Reason
	}{
		{AdminRequest{Kind: admin.Move, Spans: []span.Name{{Table: 99}}, Node: "n1"}, "unknown span 99: changefeed cf has no table 99", ""},
		{AdminRequest{Kind: admin.Move, Spans: []span.Name{half}, Node: "n1"}, "unknown span 2:", admin.SpanRenamed},
		{AdminRequest{Kind: admin.Move, Spans: []span.Name{{Table: 1}}, Node: "ghost"}, "node ghost is not alive", admin.NodeNotAlive},
		{AdminRequest{Kind: admin.Drain, Node: "ghost"}, "node ghost is not alive", admin.NodeNotAlive},
		{AdminRequest{Kind: admin.Split, Spans: []span.Name{{Table: 77}}}, "unknown span 77", ""},
		{AdminRequest{Kind: admin.Merge, Spans: []span.Name{{Table: 1}, {Table: 3}}}, "spans not adjacent", admin.NotAdjacent},
	}
	for i, c := range cases {
		c.req.ID = string(rune('a' + i))
		s.m.Admin(c.req, s.now)
		r := s.m.TakeAdminResults()
		if len(r) != 1 || r[0].Outcome != admin.Refused || !strings.Contains(r[0].Message, c.want) || r[0].Reason != c.reason {
			t.Errorf("%+v: got %+v, want a refusal containing %q for reason %q", c.req, r, c.want, c.reason)
		}
		// The core states facts; what to type is the CLI's business.
		if len(r) == 1 && (strings.Contains(r[0].Message, "tidemark") || strings.Contains(r[0].Message, "--")) {
			t.Errorf("%+v: refusal %q carries CLI text", c.req, r[0].Message)
		}
	}
	s.step()
	after := s.m.Status()
	if len(after.Operators) != 0 || after.Spans["replicating"] != before.Spans["replicating"] {
		t.Fatalf("refusals changed the schedule: %+v -> %+v", before, after)
	}
}

func TestAdminDrain(t *testing.T) {
	s := newAdminSim(t)
	s.m.Admin(AdminRequest{ID: "d1", Kind: admin.Drain, Node: "n2"}, s.now)
	r := s.adminResult("d1")
	if r.Outcome != admin.Done || !strings.Contains(r.Message, "node n2 holds no spans") {
		t.Fatalf("drain: %+v", r)
	}
	s.settle(18)
	st := s.m.Status()
	if st.NodeSpans["n2"] != 0 || st.NodeSpans["n1"]+st.NodeSpans["n3"] != 18 {
		t.Fatalf("after drain: %v", st.NodeSpans)
	}
	// Drained: no move onto it, and the balance scheduler leaves it empty.
	s.m.Admin(AdminRequest{ID: "m1", Kind: admin.Move, Spans: []span.Name{{Table: 1}}, Node: "n2"}, s.now)
	if r := s.adminResult("m1"); r.Outcome != admin.Refused || !strings.Contains(r.Message, "is drained") {
		t.Fatalf("move onto drained node: %+v", r)
	}
	for i := 0; i < 10; i++ {
		s.step()
	}
	if got := s.m.Status().NodeSpans["n2"]; got != 0 {
		t.Fatalf("drained node got %d spans back", got)
	}
	// The last node standing cannot be drained.
	s.m.SetDrained([]string{"n2", "n3"})
	s.m.Admin(AdminRequest{ID: "d2", Kind: admin.Drain, Node: "n1"}, s.now)
	if r := s.adminResult("d2"); r.Outcome != admin.Refused || !strings.Contains(r.Message, "only node left") {
		t.Fatalf("drain of last node: %+v", r)
	}
	// The drain ends: the balance scheduler gives n2 spans again.
	s.m.SetDrained(nil)
	s.settle(18)
	for i := 0; i < 30 && s.m.Status().NodeSpans["n2"] < 5; i++ {
		s.step()
	}
	if got := s.m.Status().NodeSpans["n2"]; got < 5 {
		t.Fatalf("undrained node has %d spans, want its share back", got)
	}
}

func TestSpanQueryPages(t *testing.T) {
	s := newAdminSim(t)
	var all []api.SpanInfo
	q := SpanQuery{Table: -1, Limit: 5}
	for {
		page, err := s.m.Spans(q)
		if err != nil {
			t.Fatal(err)
		}
		if page.Matched != 18 {
			t.Fatalf("matched %d, want 18", page.Matched)
		}
		all = append(all, page.Spans...)
		if page.Next == 0 {
			break
		}
		q.Cursor = page.Next
	}
	if len(all) != 18 {
		t.Fatalf("paged %d spans, want 18", len(all))
	}
	page, err := s.m.Spans(SpanQuery{Table: -1, Node: "n1", State: "replicating", Mode: "redo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range page.Spans {
		if sp.Node != "n1" || sp.Mode != "redo" || sp.State != "replicating" {
			t.Fatalf("filtered listing holds %+v", sp)
		}
	}
	if _, err := s.m.Spans(SpanQuery{Table: -1, State: "sleeping"}); err == nil {
		t.Fatal("bad state filter accepted")
	}
	states := s.m.NodeSpanStates()
	if states["n1"]["replicating"] != s.m.Status().NodeSpans["n1"] {
		t.Fatalf("NodeSpanStates %v vs NodeSpans %v", states, s.m.Status().NodeSpans)
	}
}

// liveResult runs the live cluster until request id is answered.
func (c *liveCluster) liveResult(id string) AdminResult {
	c.t.Helper()
	for i := 0; i < 300; i++ {
		for _, r := range c.m.TakeAdminResults() {
			if r.ID == id {
				return r
			}
		}
		c.step()
	}
	c.t.Fatalf("admin request %s never answered", id)
	return AdminResult{}
}

// tableSpans returns table's spans in mode, in key order, as span.FormatName names them.
func (c *liveCluster) tableSpans(table int64, mode string) []string {
	c.t.Helper()
	page, err := c.m.Spans(SpanQuery{Table: table, Mode: mode})
	if err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for _, s := range page.Spans {
		out = append(out, s.Span)
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := span.ParseName(out[i])
		b, _ := span.ParseName(out[j])
		return span.Compare(a.Span(), b.Span()) < 0
	})
	return out
}

// TestAdminSplitMergeLive splits a table by admin request over real dispatcher managers, refuses
// a merge of non-adjacent pieces without changing anything, merges two neighbours, and checks the
// sinks for double ownership and gaps.
func TestAdminSplitMergeLive(t *testing.T) {
	startTs := ts.FromTime(t0)
	cfg := Config{ClusterID: "c1", Changefeed: "cf", SelfNode: "n1", Epoch: 5,
		ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf", StartTs: startTs, Redo: true}}
	for id := int64(1); id <= 6; id++ {
		cfg.ChangefeedConfig.Tables = append(cfg.ChangefeedConfig.Tables, heartbeatpb.TableConfig{TableId: id, Load: 100})
	}
	c := newLiveCluster(t, cfg, "n1", "n2", "n3")
	c.run(5 * time.Second)

	c.m.Admin(AdminRequest{ID: "s1", Kind: admin.Split, Spans: []span.Name{{Table: 3}}, Pieces: 3}, c.now)
	if r := c.liveResult("s1"); r.Outcome != admin.Done || !strings.Contains(r.Message, "split span 3 into 3 spans") {
		t.Fatalf("split: %+v", r)
	}
	pieces := c.tableSpans(3, "default")
	if len(pieces) != 3 || len(c.tableSpans(3, "redo")) != 3 {
		t.Fatalf("table 3 after split: %v / %v", pieces, c.tableSpans(3, "redo"))
	}
	c.run(3 * time.Second)

	names := func(ss ...string) []span.Name {
		var out []span.Name
		for _, s := range ss {
			n, err := span.ParseName(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		return out
	}
	before := c.m.Status().OperatorsDone
	c.m.Admin(AdminRequest{ID: "g1", Kind: admin.Merge, Spans: names(pieces[0], pieces[2])}, c.now)
	if r := c.liveResult("g1"); r.Outcome != admin.Refused || !strings.Contains(r.Message, "spans not adjacent") {
		t.Fatalf("merge of non-adjacent spans: %+v", r)
	}
	if got := c.tableSpans(3, "default"); len(got) != 3 || fmt.Sprint(c.m.Status().OperatorsDone) != fmt.Sprint(before) {
		t.Fatalf("refused merge changed something: %v, %v -> %v", got, before, c.m.Status().OperatorsDone)
	}
	c.m.Admin(AdminRequest{ID: "g2", Kind: admin.Merge, Spans: names(pieces[0], pieces[1])}, c.now)
	if r := c.liveResult("g2"); r.Outcome != admin.Done || !strings.Contains(r.Message, "merged") {
		t.Fatalf("merge: %+v", r)
	}
	if got := c.tableSpans(3, "default"); len(got) != 2 || got[1] != pieces[2] {
		t.Fatalf("table 3 after merge: %v (pieces were %v)", got, pieces)
	}
	c.run(3 * time.Second)
	rep, err := sinkcheck.Check(c.records(func(int64) bool { return true }), startTs, 1, 2, 3, 4, 5, 6)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Err() != nil {
		t.Fatal(rep.Err())
	}
}

package maintainer

import (
	"strings"
	"testing"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/span"
)

// TestUnhealthyNode: errors reported by a node's dispatchers show per span and per node; once
// the node is marked unhealthy its spans move off and nothing comes back until the mark goes.
// None of it is a drain.
func TestUnhealthyNode(t *testing.T) {
	s := newAdminSim(t)
	onN2 := s.m.Status().NodeSpans["n2"]
	if onN2 == 0 {
		t.Fatal("n2 serves nothing to begin with")
	}
	const cause = "dispatcher: flush sink x: no space left on device"
	s.nodes["n2"].sink.fail = cause
	for i := 0; i < 5; i++ {
		s.step()
	}
	st := s.m.Status()
	if got := st.SpanErrors["n2"]; got.Spans != onN2 || got.Error != cause || len(st.SpanErrors) != 1 {
		t.Fatalf("span errors %+v, want %d spans of n2 with %q", st.SpanErrors, onN2, cause)
	}
	page, err := s.m.Spans(SpanQuery{State: "error", Table: -1})
	if err != nil || page.Matched != onN2 {
		t.Fatalf("spans in state error: %+v %v, want %d", page, err, onN2)
	}
	for _, sp := range page.Spans {
		if sp.Node != "n2" || sp.State != "error" || sp.Error != cause {
			t.Fatalf("erroring span listed as %+v", sp)
		}
	}

	s.m.SetUnhealthy([]string{"n2"})
	s.settle(18)
	s.nodes["n2"].sink.fail = "" // the disk has room again: dispatchers placed there later work
	st = s.m.Status()
	if st.NodeSpans["n2"] != 0 || st.NodeSpans["n1"]+st.NodeSpans["n3"] != 18 {
		t.Fatalf("unhealthy n2 still serves spans: %v", st.NodeSpans)
	}
	if len(st.SpanErrors) != 0 || len(st.Unhealthy) != 1 || st.Unhealthy[0] != "n2" || len(s.m.Drained()) != 0 {
		t.Fatalf("after the move: errors %v, unhealthy %v, drained %v", st.SpanErrors, st.Unhealthy, s.m.Drained())
	}
	s.m.Admin(AdminRequest{ID: "m1", Kind: admin.Move, Spans: []span.Name{{Table: 1}}, Node: "n2"}, s.now)
	if r := s.adminResult("m1"); r.Outcome != admin.Refused || !strings.Contains(r.Message, "unhealthy") {
		t.Fatalf("move onto an unhealthy node: %+v", r)
	}
	for i := 0; i < 10; i++ {
		s.step()
	}
	if got := s.m.Status().NodeSpans["n2"]; got != 0 {
		t.Fatalf("unhealthy node got %d spans back", got)
	}

	s.m.SetUnhealthy(nil)
	for i := 0; i < 40 && s.m.Status().NodeSpans["n2"] < 5; i++ {
		s.step()
	}
	if got := s.m.Status().NodeSpans["n2"]; got < 5 {
		t.Fatalf("healthy again, n2 has %d spans, want its share back", got)
	}
}

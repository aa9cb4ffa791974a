package main

import (
	"testing"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/etcdutil"
)

func TestAdviceForReasons(t *testing.T) {
	move := etcdutil.AdminRequest{Kind: admin.Move, Spans: []string{"7:74000000000000000700-7400000000000000070f"}, Node: "n2"}
	for _, tc := range []struct {
		reason admin.Reason
		want   string
	}{
		{admin.NodeNotAlive, "list live nodes with `tidemark ctl nodes`"},
		{admin.NodeDrained, "end the drain first with `tidemark ctl drain n2 --cancel`"},
		{admin.NodeUnhealthy, "`tidemark ctl status` says why"},
		{admin.SpanBusy, "see `tidemark ctl operators`"},
		{admin.NoOperatorSlot, "retry when `tidemark ctl operators` shows fewer"},
		{admin.SpanRenamed, "name one exactly as `tidemark ctl spans --table 7` prints it"},
		{admin.NotAdjacent, "see `tidemark ctl spans --table 7`"},
		{"", ""},
	} {
		res := etcdutil.AdminResult{Outcome: admin.Refused, Message: "fact", Reason: tc.reason}
		if got := adviceFor(move, res); got != tc.want {
			t.Errorf("advice for %q = %q, want %q", tc.reason, got, tc.want)
		}
		want := "fact"
		if tc.want != "" {
			want += "; " + tc.want
		}
		if got := withAdvice(move, res); got != want {
			t.Errorf("message for %q = %q, want %q", tc.reason, got, want)
		}
	}
}

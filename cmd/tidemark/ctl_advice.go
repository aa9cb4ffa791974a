package main

import (
	"fmt"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/span"
)

// adviceFor returns what to type about a refused or failed admin request, from the reason the
// maintainer gave, or "". The maintainer states facts only; the commands to run are the CLI's.
func adviceFor(req etcdutil.AdminRequest, res etcdutil.AdminResult) string {
	switch res.Reason {
	case admin.NodeNotAlive:
		return "list live nodes with `tidemark ctl nodes`"
	case admin.NodeDrained:
		return fmt.Sprintf("end the drain first with `tidemark ctl drain %s --cancel`", req.Node)
	case admin.NodeUnhealthy:
		return "`tidemark ctl status` says why"
	case admin.SpanBusy:
		return "see `tidemark ctl operators`"
	case admin.NoOperatorSlot:
		return "retry when `tidemark ctl operators` shows fewer"
	case admin.SpanRenamed, admin.NotAdjacent:
		if len(req.Spans) == 0 {
			return ""
		}
		n, err := span.ParseName(req.Spans[0])
		if err != nil {
			return ""
		}
		if res.Reason == admin.SpanRenamed {
			return fmt.Sprintf("name one exactly as `tidemark ctl spans --table %d` prints it", n.Table)
		}
		return fmt.Sprintf("see `tidemark ctl spans --table %d`", n.Table)
	}
	return ""
}

// withAdvice is the result's message followed by the advice for it, if any.
func withAdvice(req etcdutil.AdminRequest, res etcdutil.AdminResult) string {
	if a := adviceFor(req, res); a != "" {
		return res.Message + "; " + a
	}
	return res.Message
}

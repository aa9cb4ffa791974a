package maintainer

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// chunkArgs reads the piece arguments of a scripted answer: seq=<n> sets the envelope's seq (a
// lower one leaves the node's count alone, a higher one moves it, so later envelopes follow), chunk=<index>/<total> makes it one piece of
// an answer, req=<n> the request a bootstrap answer names (default: the last one sent to node).
func (e *env) chunkArgs(t *testing.T, td *datadriven.TestData, node string, env *heartbeatpb.Envelope) (*heartbeatpb.Chunk, uint64) {
	if td.HasArg("seq") {
		n := e.node(node)
		n.seq-- // envelope counted one; the given seq replaces it
		td.ScanArgs(t, "seq", &env.Seq)
		n.seq = max(n.seq, env.Seq)
	}
	req := e.m.out.asked[node]
	if td.HasArg("req") {
		td.ScanArgs(t, "req", &req)
	}
	if !td.HasArg("chunk") {
		return nil, req
	}
	var s string
	td.ScanArgs(t, "chunk", &s)
	ch := &heartbeatpb.Chunk{}
	if _, err := fmt.Sscanf(s, "%d/%d", &ch.Index, &ch.Total); err != nil {
		t.Fatalf("bad chunk %q (want index/total)", s)
	}
	return ch, req
}

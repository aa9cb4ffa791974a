package operator

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// newSplitMerge builds a Split or Merge from a scenario line:
//
//	split origin=n1 parent=7.1 children=n2/7.2,n3/7.3 [cp=100] [table=1] [redo]
//	merge node=n1 sources=7.1,7.2 merged=7.3 [cps=100,120] [table=1] [redo]
//
// Children (sources) are the table's span split evenly in key order.
func newSplitMerge(t testing.TB, td *datadriven.TestData, id heartbeatpb.OperatorID, mode heartbeatpb.Mode,
	now time.Time) (Operator, error) {
	whole := span.TableSpan(int64(argU64(t, td, "table", 1)))
	if td.Cmd == "split" {
		parts := strings.Split(argStr(t, td, "children", ""), ",")
		pieces := evenPieces(t, whole, len(parts))
		d := heartbeatpb.OperatorDescriptor{Id: id, Kind: heartbeatpb.OpSplit, Mode: mode,
			Sources: []heartbeatpb.SpanPlacement{placement(whole, argStr(t, td, "origin", ""),
				parseDID(t, argStr(t, td, "parent", "7.1")))}}
		for i, p := range parts {
			node, did, _ := strings.Cut(p, "/")
			d.Targets = append(d.Targets, placement(pieces[i], node, parseDID(t, did)))
		}
		return NewSplit(d, argU64(t, td, "cp", 100), now)
	}
	node := argStr(t, td, "node", "")
	srcs := strings.Split(argStr(t, td, "sources", ""), ",")
	pieces := evenPieces(t, whole, len(srcs))
	d := heartbeatpb.OperatorDescriptor{Id: id, Kind: heartbeatpb.OpMerge, Mode: mode,
		Targets: []heartbeatpb.SpanPlacement{placement(whole, node, parseDID(t, argStr(t, td, "merged", "7.9")))}}
	for i, s := range srcs {
		d.Sources = append(d.Sources, placement(pieces[i], node, parseDID(t, s)))
	}
	var cps []uint64
	if td.HasArg("cps") {
		for _, c := range strings.Split(argStr(t, td, "cps", ""), ",") {
			v, err := strconv.ParseUint(c, 10, 64)
			if err != nil {
				t.Fatalf("bad cps %q", c)
			}
			cps = append(cps, v)
		}
	}
	return NewMerge(d, cps, now)
}

func fmtMerge(o Outgoing) string {
	r := o.Merge
	var ids []string
	for _, s := range r.SourceIds {
		ids = append(ids, fmtDID(s))
	}
	return fmt.Sprintf("-> %s MERGE op=%d.%d sources=(%s) merged=%s span=%s mode=%v desc[%v src=%s dst=%s start=%d]\n",
		o.Node, r.Operator.Id.Epoch, r.Operator.Id.Seq, strings.Join(ids, ","), fmtDID(r.MergedId),
		fmtSpan(r.MergedSpan), r.Mode, r.Operator.Kind, fmtPlacements(r.Operator.Sources),
		fmtPlacements(r.Operator.Targets), r.Operator.StartTs)
}

// evenPieces splits s into k pieces; one piece is s itself (for malformed descriptors).
func evenPieces(t testing.TB, s heartbeatpb.TableSpan, k int) []heartbeatpb.TableSpan {
	if k == 1 {
		return []heartbeatpb.TableSpan{s}
	}
	pieces, err := span.Split(s, k)
	if err != nil {
		t.Fatal(err)
	}
	return pieces
}

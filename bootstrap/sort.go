package bootstrap

import (
	"slices"
	"sort"
	"strings"

	"github.com/tidemark/tidemark/span"
)

// sortPlan orders every list of the plan so that the same input gives the same plan.
func sortPlan(p *Plan) {
	// Placement produces Replicating in this order already; the sort only confirms it.
	slices.SortFunc(p.Replicating, comparePlacement)
	slices.SortFunc(p.Absent, func(a, b Absent) int {
		if c := span.Compare(a.Span, b.Span); c != 0 {
			return c
		}
		return int(a.Mode) - int(b.Mode)
	})
	sort.Slice(p.Resumed, func(i, j int) bool { return p.Resumed[i].Op.ID().Less(p.Resumed[j].Op.ID()) })
	sort.Slice(p.Completed, func(i, j int) bool { return p.Completed[i].ID.Less(p.Completed[j].ID) })
	slices.SortStableFunc(p.Conflicts, func(a, b Conflict) int { return comparePlacement(a.Placement, b.Placement) })
	sort.Slice(p.Acks, func(i, j int) bool {
		if p.Acks[i].Node != p.Acks[j].Node {
			return p.Acks[i].Node < p.Acks[j].Node
		}
		return p.Acks[i].Operator.Less(p.Acks[j].Operator)
	})
	sort.SliceStable(p.Unresolved, func(i, j int) bool {
		a, b := p.Unresolved[i], p.Unresolved[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		if a.Operator != b.Operator {
			return a.Operator.Less(b.Operator)
		}
		if c := span.Compare(a.Span, b.Span); c != 0 {
			return c < 0
		}
		return a.Dispatcher.Less(b.Dispatcher)
	})
}

// comparePlacement orders placements by table, mode, span, node and dispatcher.
func comparePlacement(a, b Placement) int {
	if a.Span.TableId != b.Span.TableId {
		return cmpInt(a.Span.TableId, b.Span.TableId)
	}
	if a.Mode != b.Mode {
		return int(a.Mode) - int(b.Mode)
	}
	if c := span.Compare(a.Span, b.Span); c != 0 {
		return c
	}
	if a.Node != b.Node {
		return strings.Compare(a.Node, b.Node)
	}
	if a.Dispatcher.Less(b.Dispatcher) {
		return -1
	}
	if a.Dispatcher == b.Dispatcher {
		return 0
	}
	return 1
}

func cmpInt(a, b int64) int {
	if a < b {
		return -1
	}
	return 1
}

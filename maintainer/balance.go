package maintainer

import (
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// moveCount is how many spans the balance scheduler takes from one node to another.
type moveCount struct {
	from, to string
	n        int
}

// planMoves is the balance scheduler: a pure function from the ready nodes' span counts to
// moves, one span at a time from the most to the least loaded node (ties by node ID) until the
// two differ by at most one, never more than limit moves. Moves between the same pair of
// nodes are grouped.
func planMoves(loads []nodeLoad, limit int) []moveCount {
	if len(loads) < 2 || limit <= 0 {
		return nil
	}
	counts := make([]int, len(loads))
	for i, l := range loads {
		counts[i] = l.spans
	}
	var out []moveCount
	for moved := 0; moved < limit; moved++ {
		hi, lo := 0, 0
		for i := range counts {
			if counts[i] > counts[hi] {
				hi = i
			}
			if counts[i] < counts[lo] {
				lo = i
			}
		}
		if counts[hi]-counts[lo] <= 1 {
			break
		}
		counts[hi]--
		counts[lo]++
		if n := len(out); n > 0 && out[n-1].from == loads[hi].node && out[n-1].to == loads[lo].node {
			out[n-1].n++
		} else {
			out = append(out, moveCount{from: loads[hi].node, to: loads[lo].node, n: 1})
		}
	}
	return out
}

// balance runs the balance scheduler when the schedule is quiet: every span replicating and no
// operator in flight, so the counts it reads are final. Each mode is balanced on its own (span
// counts within one of the mean), with at most ScheduleBatch moves per round. With redo on, a
// default span's move takes its redo twin along when the redo plan moves between the same two
// nodes, and the remaining redo moves prefer spans whose default twin already sits at the
// destination, so both modes of a key range stay on one node where they can.
func balance(v schedView, act starter, now time.Time) {
	if !v.quiet() {
		return
	}
	limit := min(v.cfg.ScheduleBatch, v.cfg.MaxOperators, v.cfg.MaxOperatorsPerNode)
	loads := v.nodeLoads()
	if !v.redo() {
		moveSpans(v, act, planMoves(loads, limit), heartbeatpb.ModeDefault, nil, limit, now)
		return
	}
	def, redo := v.modeLoads(loads)
	defPlan, redoPlan := planMoves(def, limit), planMoves(redo, limit)
	if len(defPlan) == 0 && len(redoPlan) == 0 {
		// Each mode is even: even out the totals too, without unbalancing either mode.
		defPlan, redoPlan = planTotalMoves(def, redo, limit)
	}
	redoPlan = groupMoves(redoPlan)
	pending := make(map[[2]string]int, len(redoPlan))
	for _, mv := range redoPlan {
		pending[[2]string{mv.from, mv.to}] = mv.n
	}
	moved := moveSpans(v, act, defPlan, heartbeatpb.ModeDefault, pending, limit, now)
	var rest []moveCount
	for _, mv := range redoPlan {
		if n := pending[[2]string{mv.from, mv.to}]; n > 0 {
			rest = append(rest, moveCount{from: mv.from, to: mv.to, n: n})
		}
	}
	if moved < limit {
		moveSpans(v, act, rest, heartbeatpb.ModeRedo, nil, limit-moved, now)
	}
}

// planTotalMoves is the last step of balancing two modes that are each within one of their
// mean: while two nodes' totals differ by more than one, move a span of a mode in which the
// fuller node has more than the emptier, which keeps that mode within one. Pure.
func planTotalMoves(def, redo []nodeLoad, limit int) (defPlan, redoPlan []moveCount) {
	if len(def) < 2 {
		return nil, nil
	}
	d := make([]int, len(def))
	r := make([]int, len(redo))
	for i := range def {
		d[i], r[i] = def[i].spans, redo[i].spans
	}
	add := func(plan []moveCount, from, to string) []moveCount {
		if n := len(plan); n > 0 && plan[n-1].from == from && plan[n-1].to == to {
			plan[n-1].n++
			return plan
		}
		return append(plan, moveCount{from: from, to: to, n: 1})
	}
	for moved := 0; moved < limit; moved++ {
		hi, lo := 0, 0
		for i := range d {
			if d[i]+r[i] > d[hi]+r[hi] {
				hi = i
			}
			if d[i]+r[i] < d[lo]+r[lo] {
				lo = i
			}
		}
		switch {
		case d[hi]+r[hi]-d[lo]-r[lo] <= 1:
			return defPlan, redoPlan
		case d[hi] > d[lo]:
			d[hi], d[lo] = d[hi]-1, d[lo]+1
			defPlan = add(defPlan, def[hi].node, def[lo].node)
		default: // totals differ by two or more, so the other mode differs
			r[hi], r[lo] = r[hi]-1, r[lo]+1
			redoPlan = add(redoPlan, redo[hi].node, redo[lo].node)
		}
	}
	return defPlan, redoPlan
}

// moveSpans starts the planned moves of spans in mode, smallest span IDs first, and returns how
// many it started. With twins (the other mode's pending moves by node pair), a moved span's twin
// on the same origin goes along while that pair has moves pending. Without (the second mode's
// remaining moves, redo on), spans whose twin already sits at the destination go first.
func moveSpans(v schedView, act starter, plan []moveCount, mode heartbeatpb.Mode, twins map[[2]string]int, limit int, now time.Time) int {
	moved := 0
	for _, mv := range groupMoves(plan) {
		dest := mv.to
		var picks []spanID
		if twins == nil && v.redo() {
			reunite := func(sid spanID) bool {
				t, ok := v.db.twin(sid)
				return ok && v.db.nodeOf(t) == dest
			}
			picks = v.pickOnNode(mv.from, mode, mv.n, reunite)
			if len(picks) < mv.n {
				picks = append(picks, v.pickOnNode(mv.from, mode, mv.n-len(picks), func(sid spanID) bool { return !reunite(sid) })...)
			}
		} else {
			picks = v.pickOnNode(mv.from, mode, mv.n, nil)
		}
		for _, sid := range picks {
			if moved >= limit {
				return moved
			}
			if !act.move(sid, dest, now) {
				continue
			}
			moved++
			key := [2]string{mv.from, dest}
			if twins[key] <= 0 || moved >= limit {
				continue
			}
			if t, ok := v.db.twin(sid); ok && v.db.nodeOf(t) == mv.from && act.move(t, dest, now) {
				twins[key]--
				moved++
			}
		}
	}
	return moved
}

// groupMoves sums the moves of each node pair, in the order pairs first appear: the plan takes
// one span at a time, so one pair recurs, and each pair should cost one pass over its origin.
func groupMoves(plan []moveCount) []moveCount {
	var out []moveCount
	at := make(map[[2]string]int, len(plan))
	for _, mv := range plan {
		k := [2]string{mv.from, mv.to}
		if i, ok := at[k]; ok {
			out[i].n += mv.n
			continue
		}
		at[k] = len(out)
		out = append(out, mv)
	}
	return out
}

package maintainer

import (
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
	"github.com/tidemark/tidemark/span"
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
// operator in flight, so the counts it reads are final. Moves are bounded by the round batch.
func (m *Maintainer) balance(now time.Time) {
	if m.ctl.Len() > 0 || m.db.counts[stateAbsent] > 0 || m.db.counts[stateScheduling] > 0 {
		return
	}
	loads := m.nodeLoads()
	limit := min(m.cfg.ScheduleBatch, m.cfg.MaxOperators, m.cfg.MaxOperatorsPerNode)
	for _, mv := range planMoves(loads, limit) {
		taken := 0
		for _, sid := range m.db.onNode(mv.from) {
			if taken == mv.n {
				break
			}
			if m.startMove(sid, mv.to, now) {
				taken++
			}
		}
	}
}

// startMove creates the Move of one replicating span to dest; false when that is not possible.
func (m *Maintainer) startMove(sid spanID, dest string, now time.Time) bool {
	r := m.db.get(sid)
	if r.state != stateReplicating || r.op != noOp || r.node == dest {
		return false
	}
	opID := heartbeatpb.OperatorID{Epoch: m.cfg.Epoch, Seq: m.nextOperator + 1}
	did := heartbeatpb.DispatcherID{Hi: m.cfg.Epoch, Lo: m.nextDispatcher + 1}
	op, err := operator.NewMove(opID, r.span, r.mode, r.node, r.dispatcher, dest, did, m.db.checkpoint(sid), now)
	if err != nil {
		panic("maintainer: span DB holds an invalid move: " + err.Error())
	}
	out, err := m.ctl.Add(op, now)
	if err != nil {
		if !errors.Is(err, operator.ErrSpanBusy) && !errors.Is(err, operator.ErrLimit) {
			panic("maintainer: unexpected controller error: " + err.Error())
		}
		m.log.Debug("move deferred", zap.String("span", span.String(r.span)), zap.Error(err))
		return false
	}
	m.nextOperator++
	m.nextDispatcher++
	m.db.beginOp(sid, opID)
	m.opSpans[opID] = []spanID{sid}
	m.emit(out)
	return true
}

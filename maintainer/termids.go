package maintainer

import (
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// maxTermCounter bounds the counters a bootstrap answer can move: a term never mints anywhere
// near 2^62 IDs, so a higher one is a malformed or forged claim, and following it could wrap
// the counter round to IDs in use.
const maxTermCounter = 1 << 62

// skipTermIDs moves the operator and dispatcher counters past every ID of this very epoch that
// the bootstrap answers name. A term numbers its IDs (epoch, counter) from 1 and every term has
// an epoch of its own (etcdutil.Campaign), so on a sound cluster there are none. But if a term
// ever ran at the epoch of an earlier one, counting from 1 again would give a new span the ID
// of a dispatcher the earlier term had placed: the index would take the new binding, the old
// dispatcher's reports would look confused and the checkpoint would stop for good. Skipping
// costs a scan of the answers and keeps IDs unique whatever the election did.
func (r *opRunner) skipTermIDs(responses map[string]*heartbeatpb.MaintainerBootstrapResponse, log *zap.Logger) {
	epoch := r.cfg.Epoch
	var ops, dispatchers uint64
	seenOp := func(id heartbeatpb.OperatorID) {
		if id.Epoch == epoch && id.Seq < maxTermCounter {
			ops = max(ops, id.Seq)
		}
	}
	seenDispatcher := func(id heartbeatpb.DispatcherID) {
		if id.Hi == epoch && id.Lo < maxTermCounter {
			dispatchers = max(dispatchers, id.Lo)
		}
	}
	for _, resp := range responses {
		for i := range resp.Dispatchers {
			seenDispatcher(resp.Dispatchers[i].Id)
		}
		for i := range resp.Operators {
			req := &resp.Operators[i].Request
			seenOp(req.Operator.Id)
			seenDispatcher(req.Config.Id)
		}
		for i := range resp.MergeOperators {
			req := &resp.MergeOperators[i].Request
			seenOp(req.Operator.Id)
			seenDispatcher(req.MergedId)
			for _, id := range req.SourceIds {
				seenDispatcher(id)
			}
		}
	}
	if ops <= r.nextOperator && dispatchers <= r.nextDispatcher {
		return
	}
	log.Warn("bootstrap answers name IDs of this term's own epoch: an earlier term ran at it; new IDs start past them",
		zap.Uint64("epoch", epoch), zap.Uint64("operator_seq", ops), zap.Uint64("dispatcher_counter", dispatchers))
	r.nextOperator = max(r.nextOperator, ops)
	r.nextDispatcher = max(r.nextDispatcher, dispatchers)
}

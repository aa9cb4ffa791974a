package dispatchermanager

import "github.com/tidemark/tidemark/heartbeatpb"

// outbox holds the envelopes a Manager's Ready hands out, each stamped with this node's header
// and the next seq for its receiver (the receiver's ordering filter drops what is not newer).
type outbox struct {
	seq    *heartbeatpb.Sequencer
	queued []*heartbeatpb.Envelope
}

// send stamps env (To and Body set by the caller) with cfg's header, the epoch the node holds
// as current, and the next seq for env.To, and queues it.
func (o *outbox) send(cfg *Config, epoch uint64, env *heartbeatpb.Envelope) {
	env.ClusterId, env.Changefeed, env.From = cfg.ClusterID, cfg.Changefeed, cfg.NodeID
	env.Epoch, env.Incarnation, env.Seq = epoch, cfg.Incarnation, o.seq.Next(env.To)
	o.queued = append(o.queued, env)
}

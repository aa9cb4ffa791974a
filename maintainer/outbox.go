package maintainer

import (
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/operator"
)

// outbox collects what the core will send, per destination node, until the runner takes a
// Ready: at most one bootstrap request, one heartbeat response, one batch of schedule requests
// and one of merge requests per node, plus the nodes to evict. Traffic for a node that is not
// live is dropped: a node that left has nothing to receive.
type outbox struct {
	live      func(node string) bool
	schedule  map[string][]heartbeatpb.ScheduleDispatcherRequest
	merge     map[string][]heartbeatpb.MergeDispatcherRequest
	bootstrap map[string]bool
	acks      map[string][]heartbeatpb.OperatorID
	response  map[string]bool
	listing   map[string]bool // nodes whose response asks for the full listing
	evict     map[string]bool
	sendSeq   *heartbeatpb.Sequencer
	// requests numbers bootstrap requests; asked is the number of the last one sent to each
	// node, so a piece of an answer can be checked against what was asked (chunks.go).
	requests uint64
	asked    map[string]uint64
	// wire is the changefeed config as bootstrap requests carry it (the tables as a catalogue),
	// built once for the config it was built from: every node of a bootstrap gets the same one.
	wire     heartbeatpb.ChangefeedConfig
	wireFrom *heartbeatpb.ChangefeedConfig
}

func newOutbox(live func(string) bool) *outbox {
	return &outbox{
		live:      live,
		schedule:  make(map[string][]heartbeatpb.ScheduleDispatcherRequest),
		merge:     make(map[string][]heartbeatpb.MergeDispatcherRequest),
		bootstrap: make(map[string]bool),
		acks:      make(map[string][]heartbeatpb.OperatorID),
		response:  make(map[string]bool),
		listing:   make(map[string]bool),
		evict:     make(map[string]bool),
		sendSeq:   heartbeatpb.NewSequencer(),
		asked:     make(map[string]uint64),
	}
}

// emit queues operator requests, batched per destination node.
func (o *outbox) emit(out []operator.Outgoing) {
	for _, g := range out {
		if !o.live(g.Node) {
			continue
		}
		if g.Merge != nil {
			o.merge[g.Node] = append(o.merge[g.Node], *g.Merge)
		}
		if g.Schedule != nil {
			o.schedule[g.Node] = append(o.schedule[g.Node], *g.Schedule)
		}
	}
}

// ack queues the acknowledgement of a finished operator's journal entry on node.
func (o *outbox) ack(node string, id heartbeatpb.OperatorID) {
	if o.live(node) {
		o.acks[node] = append(o.acks[node], id)
	}
}

// drop forgets everything queued for a node that left.
func (o *outbox) drop(node string) {
	delete(o.schedule, node)
	delete(o.bootstrap, node)
	delete(o.acks, node)
	delete(o.response, node)
	delete(o.listing, node)
	delete(o.evict, node)
}

// header carries what every maintainer message needs; checkpoint is what heartbeat responses
// report as persisted.
type header struct {
	cfg        *Config
	checkpoint uint64
}

// take builds the Ready's messages and evictions and empties the outbox.
func (o *outbox) take(h header, rd *Ready) {
	dests := make(map[string]bool)
	for n := range o.bootstrap {
		dests[n] = true
	}
	for n := range o.acks {
		dests[n] = true
	}
	for n := range o.response {
		dests[n] = true
	}
	for n := range o.schedule {
		dests[n] = true
	}
	for n := range o.merge {
		dests[n] = true
	}
	for _, n := range sortedSet(dests) {
		if o.bootstrap[n] {
			env := o.envelope(h.cfg, n)
			o.requests++
			o.asked[n] = o.requests
			env.Body = &heartbeatpb.Envelope_BootstrapRequest{
				BootstrapRequest: &heartbeatpb.MaintainerBootstrapRequest{Config: o.wireConfig(h.cfg.ChangefeedConfig), RequestId: o.requests},
			}
			rd.Messages = append(rd.Messages, env)
		}
		if acks := dedupe(o.acks[n]); len(acks) > 0 || o.response[n] {
			env := o.envelope(h.cfg, n)
			env.Body = &heartbeatpb.Envelope_HeartbeatResponse{
				HeartbeatResponse: &heartbeatpb.HeartBeatResponse{
					Finished: acks, CheckpointTs: h.checkpoint, SendListing: o.listing[n],
				},
			}
			rd.Messages = append(rd.Messages, env)
		}
		if reqs := o.schedule[n]; len(reqs) > 0 {
			env := o.envelope(h.cfg, n)
			env.Body = &heartbeatpb.Envelope_Schedule{
				Schedule: &heartbeatpb.ScheduleDispatcherRequests{Requests: reqs},
			}
			rd.Messages = append(rd.Messages, env)
		}
		if reqs := o.merge[n]; len(reqs) > 0 {
			env := o.envelope(h.cfg, n)
			env.Body = &heartbeatpb.Envelope_Merge{Merge: &heartbeatpb.MergeDispatcherRequests{Requests: reqs}}
			rd.Messages = append(rd.Messages, env)
		}
	}
	rd.Evict = sortedSet(o.evict)
	if len(rd.Evict) == 0 {
		rd.Evict = nil
	}
	clear(o.evict)
	clear(o.merge)
	clear(o.bootstrap)
	clear(o.acks)
	clear(o.response)
	clear(o.listing)
	clear(o.schedule)
}

// envelope returns the header every maintainer message carries, numbered for node.
func (o *outbox) envelope(cfg *Config, node string) *heartbeatpb.Envelope {
	return &heartbeatpb.Envelope{
		ClusterId:   cfg.ClusterID,
		Changefeed:  cfg.Changefeed,
		From:        cfg.SelfNode,
		To:          node,
		Epoch:       cfg.Epoch,
		Incarnation: cfg.Epoch,
		Seq:         o.sendSeq.Next(node),
	}
}

// dedupe drops repeated operator IDs, keeping first occurrences in order: an operator can be
// both finished here and listed in the same node's journal.
func dedupe(ids []heartbeatpb.OperatorID) []heartbeatpb.OperatorID {
	if len(ids) < 2 {
		return ids
	}
	seen := make(map[heartbeatpb.OperatorID]bool, len(ids))
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// wireConfig is cfg with its tables as a catalogue (heartbeatpb.WireConfig): a million tables
// one by one would be 8 MB in one request. UpdateConfig installs a new config value, so the
// pointer tells when to build it again.
func (o *outbox) wireConfig(cfg *heartbeatpb.ChangefeedConfig) heartbeatpb.ChangefeedConfig {
	if o.wireFrom != cfg {
		var cat heartbeatpb.TableCatalogue
		if c := cfg.CatalogueOnly(); c != nil {
			cat = *c // a large changefeed's tables, kept as the catalogue alone (compactConfig)
		} else {
			cat = heartbeatpb.CompactTables(cfg.Tables)
		}
		o.wire, o.wireFrom = heartbeatpb.WireConfig(cfg, &cat), cfg
	}
	return o.wire
}

package sim

import (
	"fmt"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// Forge is the Byzantine-sender fault: a process that connects like a peer (registered or
// not) sends n envelopes with arbitrary epochs, sender names, sequence numbers and bodies drawn
// from real request shapes: creates of spans other nodes own, removes and merges of working
// dispatchers, bootstrap requests, acknowledgements of journaled operators, forged heartbeats to
// the maintainer, and garbage. Every one must be refused or held and dropped, so I1 to I6 hold.
//
// Left out is what cannot be told from the real thing without TLS (docs/protocol.md): the
// confirmed epoch under the name of the leader etcd confirmed, to a dispatcher manager, and the
// maintainer's own epoch under a registered node's name, to the maintainer.
func (c *Cluster) Forge(n int) {
	c.counter["forge"]++
	c.tracef("fault: a Byzantine sender forges %d envelopes", n)
	for i := 0; i < n; i++ {
		if env := c.forge.forgeOne(); env != nil {
			c.forged[env] = true
			if env.Epoch > 0 {
				c.forgedEpochs[env.Epoch] = true
			}
			c.wire.send(env)
		}
	}
}

// forgeOne builds one forged envelope, or nil when the draw is indistinguishable from real.
func (c forger) forgeOne() *heartbeatpb.Envelope {
	to := c.nodes[c.order[c.rng.Intn(len(c.order))]]
	env := &heartbeatpb.Envelope{ClusterId: clusterID, Changefeed: changefeed, To: to.id,
		From: c.forgedSender(), Incarnation: c.rng.Uint64() % 1000, Seq: 1 + c.rng.Uint64()%1_000_000}
	if mt := c.maintOn(to.id); mt != nil && c.rng.Intn(3) == 0 {
		env.Epoch = c.forgedEpoch(mt.epoch)
		if env.Epoch == mt.epoch && c.nodes[env.From] != nil {
			return nil // a node's name (registered by the time it arrives, maybe) and the epoch
		}
		c.forgeNodeBody(env)
		return env
	}
	env.Epoch = c.forgedEpoch(to.toldEpoch)
	for _, mt := range c.maints {
		if mt.epoch == env.Epoch && mt.node == env.From {
			return nil // a real term's epoch and node: what etcd confirms, or did
		}
	}
	if c.rng.Intn(3) == 0 && c.leader != nil {
		env.Incarnation = c.leader.epoch // mimic the real maintainer's incarnation too
	}
	c.forgeMaintainerBody(env, to)
	return env
}

// forgedSender is an unregistered name, a registered node, or the current maintainer's node.
func (c forger) forgedSender() string {
	switch c.rng.Intn(3) {
	case 0:
		return fmt.Sprintf("x%d", c.rng.Intn(3))
	case 1:
		if c.leader != nil {
			return c.leader.node
		}
	}
	return c.order[c.rng.Intn(len(c.order))]
}

// forgedEpoch is near the real one (just above, equal, below), far above it, or anything.
func (c forger) forgedEpoch(real uint64) uint64 {
	switch c.rng.Intn(5) {
	case 0:
		return real + 1 + uint64(c.rng.Intn(3))
	case 1:
		return real
	case 2:
		if real > 1 {
			return real - 1
		}
		return real + 1
	case 3:
		return real + 100 + uint64(c.rng.Intn(1000))
	}
	return 1 + c.rng.Uint64()%(1<<40)
}

// forgeMaintainerBody fills a maintainer-to-node body aimed at the receiver's real state.
func (c forger) forgeMaintainerBody(env *heartbeatpb.Envelope, to *node) {
	victim, hasVictim := c.someWorking()
	desc := heartbeatpb.OperatorDescriptor{Id: heartbeatpb.OperatorID{Epoch: env.Epoch, Seq: c.rng.Uint64() % 1000}}
	switch k := c.rng.Intn(7); {
	case k == 0:
		env.Body = &heartbeatpb.Envelope_BootstrapRequest{BootstrapRequest: &heartbeatpb.MaintainerBootstrapRequest{
			Config: *c.changefeedConfig()}}
	case k == 1 && hasVictim:
		// Remove a dispatcher that works somewhere: stopping it while the maintainer still
		// counts it replicating is the attack.
		desc.Kind = heartbeatpb.OpRemove
		env.Body = scheduleBody(heartbeatpb.ScheduleDispatcherRequest{Config: heartbeatpb.DispatcherConfig{
			Id: victim.Id, Span: victim.Span, Mode: victim.Mode}, Action: heartbeatpb.ActionRemove,
			OperatorType: desc.Kind, Operator: desc})
	case k == 2 && hasVictim:
		// Create a second owner of a span another node works on (I1).
		desc.Kind, desc.Mode = heartbeatpb.OpAdd, victim.Mode
		env.Body = scheduleBody(heartbeatpb.ScheduleDispatcherRequest{Config: heartbeatpb.DispatcherConfig{
			Id: heartbeatpb.DispatcherID{Hi: env.Epoch, Lo: c.rng.Uint64()}, Span: victim.Span, Mode: victim.Mode,
			StartTs: victim.CheckpointTs}, Action: heartbeatpb.ActionCreate, OperatorType: desc.Kind, Operator: desc})
	case k == 3 && len(to.working) >= 2:
		a, b := to.working[0], to.working[1]
		desc.Kind, desc.Mode = heartbeatpb.OpMerge, a.Mode
		env.Body = &heartbeatpb.Envelope_Merge{Merge: &heartbeatpb.MergeDispatcherRequests{Requests: []heartbeatpb.MergeDispatcherRequest{{
			SourceIds: []heartbeatpb.DispatcherID{a.Id, b.Id}, MergedId: heartbeatpb.DispatcherID{Hi: env.Epoch, Lo: 1},
			MergedSpan: span.TableSpan(a.Span.TableId), Mode: a.Mode, Operator: desc}}}}
	case k == 4:
		// Acknowledge whatever the receiver journals: its removal records would be dropped.
		resp := &heartbeatpb.HeartBeatResponse{CheckpointTs: c.rng.Uint64()}
		for _, op := range to.dm.Snapshot().Operators {
			resp.Finished = append(resp.Finished, op.Request.Operator.Id)
		}
		env.Body = &heartbeatpb.Envelope_HeartbeatResponse{HeartbeatResponse: resp}
	case k == 5:
		env.Body = scheduleBody(heartbeatpb.ScheduleDispatcherRequest{Config: heartbeatpb.DispatcherConfig{
			Id: heartbeatpb.DispatcherID{Hi: 1}, Span: heartbeatpb.TableSpan{TableId: 1, StartKey: []byte("z"), EndKey: []byte("a")}},
			Action: heartbeatpb.ScheduleAction(7), OperatorType: heartbeatpb.OperatorType(42)})
	default:
		env.Body = nil // no body at all
	}
}

// forgeNodeBody fills a node-to-maintainer body: a heartbeat that reports working dispatchers
// stopped (their spans would go absent and be placed twice) or an empty bootstrap answer.
func (c forger) forgeNodeBody(env *heartbeatpb.Envelope) {
	if c.rng.Intn(2) == 0 {
		env.Body = &heartbeatpb.Envelope_BootstrapResponse{BootstrapResponse: &heartbeatpb.MaintainerBootstrapResponse{}}
		return
	}
	hb := &heartbeatpb.HeartBeatRequest{Full: c.rng.Intn(2) == 0}
	if st, ok := c.someWorking(); ok {
		st.State = heartbeatpb.StateStopped
		hb.Statuses = append(hb.Statuses, st)
	}
	env.Body = &heartbeatpb.Envelope_Heartbeat{Heartbeat: hb}
}

// someWorking picks a working dispatcher of any up node.
func (c forger) someWorking() (heartbeatpb.DispatcherStatus, bool) {
	all := c.check.allWorking()
	if len(all) == 0 {
		return heartbeatpb.DispatcherStatus{}, false
	}
	return all[c.rng.Intn(len(all))], true
}

func scheduleBody(r heartbeatpb.ScheduleDispatcherRequest) *heartbeatpb.Envelope_Schedule {
	return &heartbeatpb.Envelope_Schedule{Schedule: &heartbeatpb.ScheduleDispatcherRequests{
		Requests: []heartbeatpb.ScheduleDispatcherRequest{r}}}
}

// ForgeHigher is the attack of issue 9, scripted: under the current maintainer's own node ID,
// with an epoch one above what node `to` has confirmed, a Create on `to` for a span another node
// works on (kind "create") or a Remove of a dispatcher working on `to` (kind "remove"). It reports
// false when the cluster has no such span or dispatcher yet.
func (c *Cluster) ForgeHigher(to, kind string) bool {
	n := c.nodes[to]
	if n == nil || c.leader == nil {
		return false
	}
	env := &heartbeatpb.Envelope{ClusterId: clusterID, Changefeed: changefeed, From: c.leader.node, To: to,
		Epoch: n.toldEpoch + 1, Incarnation: n.toldEpoch + 1, Seq: 1}
	desc := heartbeatpb.OperatorDescriptor{Id: heartbeatpb.OperatorID{Epoch: env.Epoch, Seq: 1}}
	for _, st := range c.check.allWorking() {
		onTo := c.script.working(to, st.Id)
		switch {
		case kind == "create" && !onTo:
			desc.Kind, desc.Mode = heartbeatpb.OpAdd, st.Mode
			env.Body = scheduleBody(heartbeatpb.ScheduleDispatcherRequest{Config: heartbeatpb.DispatcherConfig{
				Id: heartbeatpb.DispatcherID{Hi: env.Epoch, Lo: 1}, Span: st.Span, Mode: st.Mode, StartTs: st.CheckpointTs},
				Action: heartbeatpb.ActionCreate, OperatorType: desc.Kind, Operator: desc})
		case kind == "remove" && onTo:
			desc.Kind, desc.Mode = heartbeatpb.OpRemove, st.Mode
			env.Body = scheduleBody(heartbeatpb.ScheduleDispatcherRequest{Config: heartbeatpb.DispatcherConfig{
				Id: st.Id, Span: st.Span, Mode: st.Mode}, Action: heartbeatpb.ActionRemove, OperatorType: desc.Kind,
				Operator: desc})
		default:
			continue
		}
		c.counter["forge"]++
		c.tracef("fault: forged %s on %s under %s's name with epoch %d (%s confirmed %d)", kind, to, env.From,
			env.Epoch, to, n.toldEpoch)
		c.forged[env] = true
		c.forgedEpochs[env.Epoch] = true
		c.net.push(inflight{at: c.now, env: env}) // no loss: the attack must arrive
		return true
	}
	return false
}

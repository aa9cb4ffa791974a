package messaging

import (
	"time"

	"github.com/pingcap/failpoint"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/failpoints"
	"github.com/tidemark/tidemark/heartbeatpb"
)

// runSender is the peer's one sender goroutine: it drains the queue into batches and writes them
// on whatever stream is current. A batch whose write failed is kept and written again on the next
// stream, so queued envelopes survive reconnects (a duplicate is harmless: receivers drop what is
// not newer).
func (t *GRPCTransport) runSender(p *peer) {
	var pending []*heartbeatpb.Envelope
	defer func() { t.counters.addDropped(p.id, dropClosed, len(pending)) }()
	for p.ctx.Err() == nil {
		st := p.current()
		if st != nil && len(pending) == 0 {
			var tooLarge int
			st, pending, tooLarge = p.next(t.cfg.MaxBatch, t.cfg.MaxMsgSize)
			if tooLarge > 0 {
				t.counters.addDropped(p.id, dropTooLarge, tooLarge)
				t.log.Error("messaging: envelope larger than the message size limit dropped",
					zap.String("peer", p.id), zap.Int("count", tooLarge), zap.Int("max_msg_size", t.cfg.MaxMsgSize))
			}
		}
		if st == nil || len(pending) == 0 {
			select {
			case <-p.wake:
			case <-p.ctx.Done():
			}
			continue
		}
		if err := t.write(p, st, pending); err != nil {
			t.log.Info("messaging: write failed, waiting for a new stream",
				zap.String("peer", p.id), zap.Uint64("stream", st.id), zap.Error(err))
			p.detach(st)
			continue
		}
		pending = nil
	}
}

// write sends one batch on st, applying the transport fault for the peer, and counts it.
func (t *GRPCTransport) write(p *peer, st *stream, envs []*heartbeatpb.Envelope) error {
	f := t.faultFor(p.id)
	if f.drop {
		t.counters.addDropped(p.id, dropFault, len(envs))
		return nil
	}
	if f.delay > 0 {
		timer := time.NewTimer(f.delay)
		select {
		case <-timer.C:
		case <-p.ctx.Done():
			timer.Stop()
		}
	}
	batch := &heartbeatpb.Batch{Envelopes: envs}
	if err := st.send(batch); err != nil {
		return err
	}
	if f.duplicate {
		if err := st.send(batch); err != nil {
			return err
		}
	}
	t.counters.addSent(p.id, len(envs))
	return nil
}

// receive is a stream's one receiver goroutine body: it reads batches until the stream ends and
// hands them to deliver. A batch that does not decode is counted and skipped; the stream goes on.
func (t *GRPCTransport) receive(p *peer, st *stream, recv func(any) error) error {
	for {
		var f recvFrame
		if err := recv(&f); err != nil {
			return err
		}
		if f.err != nil {
			t.counters.addDropped(p.id, dropDecode, 1)
			t.log.Warn("messaging: undecodable batch dropped",
				zap.String("peer", p.id), zap.Uint64("stream", st.id), zap.Error(f.err))
			continue
		}
		t.deliver(p, st, f.batch.Envelopes)
	}
}

// deliver checks a received batch and calls the handler for each valid envelope, in order.
func (t *GRPCTransport) deliver(p *peer, st *stream, envs []*heartbeatpb.Envelope) {
	valid := envs[:0]
	for _, env := range envs {
		switch {
		case env.ClusterId != t.cfg.ClusterID:
			t.counters.addDropped(p.id, dropWrongCluster, 1)
			t.log.Warn("messaging: envelope of a foreign cluster dropped", zap.String("peer", p.id),
				zap.String("envelope_cluster", env.ClusterId), zap.String("changefeed", env.Changefeed))
		case env.From != p.id || env.To != t.cfg.NodeID:
			// The stream's ends were checked at the handshake; an envelope that names other
			// nodes would break per-sender ordering in the cores, so it is not trusted.
			t.counters.addDropped(p.id, dropInvalid, 1)
			t.log.Warn("messaging: envelope with mismatched from/to dropped", zap.String("peer", p.id),
				zap.String("from", env.From), zap.String("to", env.To), zap.String("changefeed", env.Changefeed))
		default:
			valid = append(valid, env)
		}
	}
	if len(valid) == 0 {
		return
	}
	p.deliverMu.Lock()
	defer p.deliverMu.Unlock()
	if p.current() != st {
		// A newer stream replaced this one: its peer may have restarted, so what is left here
		// is stale and would interleave with the new stream's traffic.
		t.counters.addDropped(p.id, dropClosed, len(valid))
		return
	}
	// Counted before the handler runs, so whoever sees an envelope also sees it counted.
	t.counters.addReceived(p.id, valid)
	for _, env := range valid {
		t.handler(env)
	}
}

// deliverLocal is the send function of the node's stream to itself: no network, no copy.
func (t *GRPCTransport) deliverLocal(b *heartbeatpb.Batch) error {
	t.counters.addReceived(t.cfg.NodeID, b.Envelopes)
	for _, env := range b.Envelopes {
		t.handler(env)
	}
	return nil
}

// fault is what an injected transport fault does to one batch.
type fault struct {
	drop      bool
	delay     time.Duration
	duplicate bool
}

// faultFor is the hook for transport failpoints (drop, delay, duplicate toward peer). The chaos
// tests enable them through pingcap/failpoint (docs/failpoints.md); in a normal build no fault is
// ever injected.
func (t *GRPCTransport) faultFor(peer string) (f fault) {
	failpoint.Inject("transport-drop", func(v failpoint.Value) { f.drop = failpoints.ForPeer(v, peer) })
	failpoint.Inject("transport-delay", func(v failpoint.Value) { f.delay = failpoints.DelayFor(v, peer) })
	failpoint.Inject("transport-duplicate", func(v failpoint.Value) { f.duplicate = failpoints.ForPeer(v, peer) })
	return f
}

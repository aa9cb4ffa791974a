package maintainer

import (
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// nodeMirror is the dispatcher set of one node as its statuses describe it: every dispatcher it
// reported and has not reported Removed, with its last state, and the digest of that set kept
// as the node computes its own (heartbeatpb.SetDigest). Heartbeats carry statuses only when a
// state changes; when the node's digest equals the mirror's, the mirror is exactly the node's
// set as of that heartbeat, so its watermarks may advance the spans served by its working
// dispatchers. A mismatch (a lost heartbeat, a restarted process) asks for the full listing.
type nodeMirror struct {
	states mirrorSet
	hash   uint64
	asked  time.Time // when the listing was last asked for; zero: not since the last one came
	swept  time.Time // when a matching heartbeat last reconciled and advanced the node's spans
}

// listingRetry spaces the requests for a listing: heartbeats that mismatch while one is on its
// way would otherwise each ask for another. A lost request or listing is asked again after it.
const listingRetry = time.Second

// sweepInterval spaces the passes over a node's spans that a matching heartbeat makes
// (reconcile, then advance to the watermarks), and sweepPerSpan stretches the spacing with the
// spans the node serves. Each pass visits every span the node serves, and while spans are
// being placed a node sends a heartbeat on every tick of its own (new dispatchers are news),
// so unspaced the maintainer's work grew with heartbeats times spans: at a million spans its
// loop spent itself on these passes and placement all but stopped at about 150,000
// replicating. With a fixed 500 ms it still spent two thirds of its time on them at 700,000;
// at 10 us per span a pass costs the loop about a tenth of its time whatever the size, and
// the checkpoint lags by that much more (3.3 s at 333,000 spans a node). A skipped pass loses
// nothing: the next matching heartbeat (the periodic one at the latest) carries the node's
// newer watermarks and digest.
const (
	sweepInterval = 500 * time.Millisecond
	sweepPerSpan  = 10 * time.Microsecond
)

// newNodeMirror returns an empty mirror.
func newNodeMirror() *nodeMirror { return &nodeMirror{} }

// servesPrint fingerprints a span in a mode (FNV-1a over table, mode, start length, start and
// end). Written out rather than through hash/fnv: the sweeps call it for every span a node
// serves, and the hasher's allocation and interface calls were a good part of their cost.
func servesPrint(s *heartbeatpb.TableSpan, mode heartbeatpb.Mode) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	word := func(v uint64) {
		for i := 56; i >= 0; i -= 8 {
			h = (h ^ uint64(byte(v>>i))) * prime
		}
	}
	word(uint64(s.TableId))
	word(uint64(mode))
	word(uint64(len(s.StartKey)))
	for _, b := range s.StartKey {
		h = (h ^ uint64(b)) * prime
	}
	for _, b := range s.EndKey {
		h = (h ^ uint64(b)) * prime
	}
	return h
}

// apply takes one status: Removed leaves the set, any other state is the dispatcher's now.
func (nm *nodeMirror) apply(st *heartbeatpb.DispatcherStatus) {
	if old, ok := nm.states.get(st.Id); ok {
		nm.hash ^= heartbeatpb.DigestEntry(st.Id, old.state())
	}
	if st.State == heartbeatpb.StateRemoved {
		nm.states.remove(st.Id)
		return
	}
	nm.states.put(st.Id, newMirrored(st.State, servesPrint(&st.Span, st.Mode)))
	nm.hash ^= heartbeatpb.DigestEntry(st.Id, st.State)
}

// matches says whether the node's digest describes exactly this set.
func (nm *nodeMirror) matches(d *heartbeatpb.SetDigest) bool {
	return d != nil && d.Count == uint64(nm.states.len()) && d.Hash == nm.hash
}

// nodeMirrors are the nodes' mirrors, by node.
type nodeMirrors map[string]*nodeMirror

// of returns node's mirror, created empty on first use.
func (ms nodeMirrors) of(node string) *nodeMirror {
	nm := ms[node]
	if nm == nil {
		nm = newNodeMirror()
		ms[node] = nm
	}
	return nm
}

// reset makes node's mirror the complete set statuses lists (a full listing or a
// bootstrap answer).
func (ms nodeMirrors) reset(node string, statuses []heartbeatpb.DispatcherStatus) {
	nm := newNodeMirror()
	if !nm.loadSorted(statuses) {
		for i := range statuses {
			nm.apply(&statuses[i])
		}
	}
	ms[node] = nm
}

// loadSorted makes the empty mirror the set statuses lists when they are in strictly
// increasing ID order and none is Removed, as a node lists them, and reports whether they were.
func (nm *nodeMirror) loadSorted(statuses []heartbeatpb.DispatcherStatus) bool {
	for i := range statuses {
		if statuses[i].State == heartbeatpb.StateRemoved || i > 0 && !statuses[i-1].Id.Less(statuses[i].Id) {
			return false
		}
	}
	base := make([]mirrorEntry, len(statuses))
	for i := range statuses {
		st := &statuses[i]
		base[i] = mirrorEntry{id: st.Id, m: newMirrored(st.State, servesPrint(&st.Span, st.Mode))}
		nm.hash ^= heartbeatpb.DigestEntry(st.Id, st.State)
	}
	nm.states = mirrorSet{base: base, n: len(base)}
	return true
}

// applyWatermarks checks a heartbeat's digest against node's mirror. On a match, free spans
// bound to dispatchers the node does not hold go back to absent, and every span bound to a
// dispatcher the node reported working (on that span and mode) advances to the watermark of its
// mode: that dispatcher is in the node's set, working, so its durable checkpoint is at least
// the watermark. On a mismatch nothing changes and the node is asked for its listing.
func (ms nodeMirrors) applyWatermarks(db *spanDB, out *outbox, log *zap.Logger, node string, hb *heartbeatpb.HeartBeatRequest, now time.Time) {
	if hb.Digest == nil {
		return // a bootstrap answer turned into a report: nothing to compare
	}
	nm := ms.of(node)
	if !nm.matches(hb.Digest) {
		if nm.asked.IsZero() || now.Sub(nm.asked) >= listingRetry {
			log.Debug("heartbeat digest does not match; asking for the listing", zap.String("node", node),
				zap.Uint64("count", hb.Digest.Count), zap.Int("known", nm.states.len()))
			nm.asked = now
			out.response[node] = true
			out.listing[node] = true
		}
		return
	}
	every := max(sweepInterval, time.Duration(len(db.byNode[node]))*sweepPerSpan)
	if !nm.swept.IsZero() && now.Sub(nm.swept) < every {
		return
	}
	nm.swept = now
	var marks [2]uint64
	var has [2]bool
	for _, w := range hb.Watermarks {
		if int(w.Mode) < len(marks) {
			marks[w.Mode], has[w.Mode] = w.CheckpointTs, true
		}
	}
	// One pass over the node's spans does both halves of the sweep. The mirror is the node's
	// set: a free span bound to a dispatcher outside it has lost it, as a full listing without
	// it would say (a restarted process, an aborted operator that left its span on a dispatcher
	// the node no longer has); it goes back to absent (reconcile's rule, in span order, after
	// the pass). Every other bound span whose dispatcher the node reported working on that span
	// and mode advances to its mode's watermark.
	var missing []spanID
	for _, sid := range db.byNode[node] {
		r := db.get(sid)
		e, held := nm.states.get(r.dispatcher)
		if !held {
			if r.free() {
				missing = append(missing, sid)
			}
			continue
		}
		if !r.life.bound() || int(r.mode) >= len(marks) || !has[r.mode] || e.state() != heartbeatpb.StateWorking {
			continue
		}
		if s := db.spanOf(sid); !e.serves(servesPrint(&s, r.mode)) {
			continue
		}
		db.advance(sid, marks[r.mode])
	}
	slices.Sort(missing)
	for _, sid := range missing {
		log.Warn("dispatcher missing from the node's set", zap.String("node", node),
			zap.String("span", span.String(db.spanOf(sid))), zap.Uint64("checkpoint", db.checkpoint(sid)))
		db.markAbsent(sid, db.checkpoint(sid))
	}
}

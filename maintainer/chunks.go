package maintainer

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// maxChunks bounds the pieces one answer may claim: at the default 1 MiB a piece, 64 GiB of
// statuses, far past any node; a claim above it is malformed, and a partial answer's bookkeeping
// stays small whatever a peer claims.
const maxChunks = 1 << 16

// answerID names one answer of a node: a bootstrap answer to one request (request 0 for a
// listing) sent as the pieces seq base, base+1, ... by one incarnation of the node.
type answerID struct {
	incarnation, request, base uint64
}

// newer orders answers of one node: another incarnation is always newer (the node restarted,
// and restartNode already dropped what the old one sent), then the later request, then the
// later pieces.
func (a answerID) newer(b answerID) bool {
	if a.incarnation != b.incarnation {
		return true
	}
	if a.request != b.request {
		return a.request > b.request
	}
	return a.base > b.base
}

// assembly is one node's answer while its pieces come in, in any order. T is the body: a
// bootstrap answer or a heartbeat carrying a full listing.
type assembly[T any] struct {
	id    answerID
	total uint32
	got   int
	parts []*T
}

// assemblies keeps at most one partial answer of each kind per node (chunks.go in
// dispatchermanager cuts them): a bootstrap answer and a full listing.
type assemblies struct {
	boot    map[string]*assembly[heartbeatpb.MaintainerBootstrapResponse]
	listing map[string]*assembly[heartbeatpb.HeartBeatRequest]
}

func newAssemblies() assemblies {
	return assemblies{
		boot:    make(map[string]*assembly[heartbeatpb.MaintainerBootstrapResponse]),
		listing: make(map[string]*assembly[heartbeatpb.HeartBeatRequest]),
	}
}

// forget drops what a node sent so far (it left or restarted).
func (as assemblies) forget(node string) {
	delete(as.boot, node)
	delete(as.listing, node)
}

// chunkOf returns the piece header of an envelope cut into several pieces, nil for a whole one.
func chunkOf(env *heartbeatpb.Envelope) *heartbeatpb.Chunk {
	var ch *heartbeatpb.Chunk
	switch b := env.Body.(type) {
	case *heartbeatpb.Envelope_BootstrapResponse:
		ch = b.BootstrapResponse.GetChunk()
	case *heartbeatpb.Envelope_Heartbeat:
		ch = b.Heartbeat.GetChunk()
	}
	if ch == nil || ch.Total < 2 {
		return nil
	}
	return ch
}

// validChunk checks a piece header by itself: what no network fault can produce.
func validChunk(env *heartbeatpb.Envelope, ch *heartbeatpb.Chunk) error {
	switch {
	case ch == nil:
		return nil
	case ch.Total <= 1 && ch.Index != 0:
		return fmt.Errorf("chunk %d of %d", ch.Index, ch.Total)
	case ch.Index >= ch.Total:
		return fmt.Errorf("chunk index %d is not below its total %d", ch.Index, ch.Total)
	case ch.Total > maxChunks:
		return fmt.Errorf("chunk total %d is over the limit %d", ch.Total, maxChunks)
	case uint64(ch.Index) >= env.Seq:
		return fmt.Errorf("chunk %d cannot have seq %d (piece 0 has seq >= 1)", ch.Index, env.Seq)
	case env.GetHeartbeat() != nil && !env.GetHeartbeat().Full:
		return fmt.Errorf("chunk %d of %d of a heartbeat that is not a full listing", ch.Index, ch.Total)
	}
	return nil
}

// add files one piece. It returns the pieces in index order once the last one is in, and
// forgets the answer. A piece of an older answer than the one being put together is refused
// (ErrStale); one of a newer answer abandons the older, whose missing pieces will not come; a
// piece that is already in is dropped. Each is logged.
func add[T any](parts map[string]*assembly[T], log *zap.Logger, kind, node string, id answerID,
	ch *heartbeatpb.Chunk, body *T) ([]*T, error) {
	a := parts[node]
	switch {
	case a == nil || id.newer(a.id):
		if a != nil {
			log.Info("abandoning an incomplete answer for a newer one", zap.String("kind", kind),
				zap.String("node", node), zap.Int("had", a.got), zap.Uint32("of", a.total),
				zap.Uint64("request", a.id.request), zap.Uint64("new-request", id.request))
		}
		a = &assembly[T]{id: id, total: ch.Total, parts: make([]*T, ch.Total)}
		parts[node] = a
	case a.id != id:
		log.Warn("chunk of an older answer refused", zap.String("kind", kind), zap.String("node", node),
			zap.Uint64("request", id.request), zap.Uint64("current-request", a.id.request),
			zap.Uint64("seq", id.base+uint64(ch.Index)))
		return nil, fmt.Errorf("%w: %s chunk %d/%d from %s answers request %d (pieces from seq %d); request %d (from seq %d) is being put together",
			ErrStale, kind, ch.Index, ch.Total, node, id.request, id.base, a.id.request, a.id.base)
	case a.total != ch.Total:
		log.Warn("chunk total changed within an answer", zap.String("kind", kind), zap.String("node", node),
			zap.Uint32("total", ch.Total), zap.Uint32("was", a.total))
		return nil, fmt.Errorf("%w: %s chunk %d from %s claims %d pieces, its answer claimed %d",
			ErrInvalid, kind, ch.Index, node, ch.Total, a.total)
	}
	if a.parts[ch.Index] != nil {
		log.Info("duplicate chunk dropped", zap.String("kind", kind), zap.String("node", node),
			zap.Uint32("chunk", ch.Index), zap.Uint32("of", ch.Total))
		return nil, nil
	}
	a.parts[ch.Index] = body
	a.got++
	if a.got < int(a.total) {
		return nil, nil
	}
	delete(parts, node)
	return a.parts, nil
}

// joinBootstrap puts a bootstrap answer's pieces together as the one answer it stands for.
func joinBootstrap(parts []*heartbeatpb.MaintainerBootstrapResponse) *heartbeatpb.MaintainerBootstrapResponse {
	out := &heartbeatpb.MaintainerBootstrapResponse{RequestId: parts[0].RequestId}
	nd, no, nm := 0, 0, 0
	for _, p := range parts {
		nd, no, nm = nd+len(p.Dispatchers), no+len(p.Operators), nm+len(p.MergeOperators)
	}
	out.Dispatchers = make([]heartbeatpb.DispatcherStatus, 0, nd)
	out.Operators = make([]heartbeatpb.InFlightOperator, 0, no)
	out.MergeOperators = make([]heartbeatpb.InFlightMerge, 0, nm)
	for _, p := range parts {
		out.Dispatchers = append(out.Dispatchers, p.Dispatchers...)
		out.Operators = append(out.Operators, p.Operators...)
		out.MergeOperators = append(out.MergeOperators, p.MergeOperators...)
		out.CheckpointTs = max(out.CheckpointTs, p.CheckpointTs)
	}
	return out
}

// joinListing puts a full listing's pieces together: the statuses of all, the rest (journal,
// rejections, watermarks, digest) of the last, where the node puts them.
func joinListing(parts []*heartbeatpb.HeartBeatRequest) *heartbeatpb.HeartBeatRequest {
	last := parts[len(parts)-1]
	out := &heartbeatpb.HeartBeatRequest{Full: true, Journal: last.Journal, Rejections: last.Rejections,
		Watermarks: last.Watermarks, Digest: last.Digest, Periodic: last.Periodic}
	n := 0
	for _, p := range parts {
		n += len(p.Statuses)
	}
	out.Statuses = make([]heartbeatpb.DispatcherStatus, 0, n)
	for _, p := range parts {
		out.Statuses = append(out.Statuses, p.Statuses...)
	}
	return out
}

// take files one piece of an answer cut into several and returns the envelope to act on: the
// whole answer once its last piece is in (with the last piece's header), else nil. The ordering
// filter does not drop a piece that comes after a later one: the pieces of one answer describe
// one moment and can be put together in any order, so a reordered piece is not lost. Whether
// the whole answer is still news is judged when it is complete: a listing older than an
// envelope already acted on is dropped (the digest asks for a new one), as the filter drops an
// old whole one. The caller has accepted env in order (its restart handled); ready says the
// node's heartbeats are acted on, asked is the last request sent to it.
func (as assemblies) take(env *heartbeatpb.Envelope, ch *heartbeatpb.Chunk, n *nodeInfo, ready bool, asked uint64,
	order *heartbeatpb.OrderFilter, log *zap.Logger, now time.Time) (*heartbeatpb.Envelope, error) {
	id := answerID{incarnation: env.Incarnation, base: env.Seq - uint64(ch.Index)}
	whole := *env
	switch b := env.Body.(type) {
	case *heartbeatpb.Envelope_BootstrapResponse:
		if n.state == nodeReady {
			delete(as.boot, env.From) // what is left of another answer will not count either
			return nil, nil           // a piece of an answer after the one that counted
		}
		id.request = b.BootstrapResponse.RequestId
		if id.request > asked {
			return nil, fmt.Errorf("%w: bootstrap chunk from %s answers request %d, the last one sent is %d",
				ErrInvalid, env.From, id.request, asked)
		}
		parts, err := add(as.boot, log, "bootstrap", env.From, id, ch, b.BootstrapResponse)
		if err != nil || parts == nil {
			if err == nil {
				n.sentAt = now // pieces are coming in: the resend waits until they stop
			}
			return nil, err
		}
		whole.Body = &heartbeatpb.Envelope_BootstrapResponse{BootstrapResponse: joinBootstrap(parts)}
	case *heartbeatpb.Envelope_Heartbeat:
		if !ready {
			return env, nil // not acted on but as a sign of life, whole or not
		}
		parts, err := add(as.listing, log, "listing", env.From, id, ch, b.Heartbeat)
		if err != nil || parts == nil {
			return nil, err
		}
		end := id.base + uint64(len(parts)) - 1
		if inc, last := order.Last(env.From); inc == id.incarnation && last > end {
			log.Info("dropping a listing older than a heartbeat already applied", zap.String("node", env.From),
				zap.Uint64("listing-end-seq", end), zap.Uint64("applied-seq", last), zap.Int("chunks", len(parts)))
			return nil, nil
		}
		whole.Body = &heartbeatpb.Envelope_Heartbeat{Heartbeat: joinListing(parts)}
	}
	return &whole, nil
}

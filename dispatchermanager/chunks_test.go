package dispatchermanager

import (
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// statuses returns n statuses shaped as a large node holds them: one whole-table span each,
// IDs of a late epoch, TSO checkpoints, a load.
func statuses(n int) []heartbeatpb.DispatcherStatus {
	out := make([]heartbeatpb.DispatcherStatus, n)
	for i := range out {
		out[i] = heartbeatpb.DispatcherStatus{
			Id:   heartbeatpb.DispatcherID{Hi: 123456, Lo: uint64(i + 1)},
			Span: span.TableSpan(int64(i + 1)), State: heartbeatpb.StateWorking,
			CheckpointTs: 454_000_000_000_000_000 + uint64(i), Load: 1000,
		}
	}
	return out
}

func envelopeSize(body heartbeatpb.Envelope_BootstrapResponse) int {
	env := &heartbeatpb.Envelope{ClusterId: "cluster-0001", Changefeed: "changefeed-0001", From: "node-0123abcd",
		To: "node-4567ef01", Epoch: 1 << 40, Incarnation: 1 << 60, Seq: 1 << 30, Body: &body}
	return env.Size()
}

// TestChunkMillion builds a bootstrap answer of 1,000,000 dispatchers (a node holding a whole
// changefeed) and a listing of as many, and measures the largest envelope whole and in pieces.
func TestChunkMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a million statuses")
	}
	const n = 1_000_000
	resp := &heartbeatpb.MaintainerBootstrapResponse{Dispatchers: statuses(n), CheckpointTs: 1 << 60, RequestId: 3}
	whole := envelopeSize(heartbeatpb.Envelope_BootstrapResponse{BootstrapResponse: resp})
	pieces := chunkBootstrap(resp, DefaultChunkBytes)
	largest, total := 0, 0
	for i, p := range pieces {
		largest = max(largest, envelopeSize(heartbeatpb.Envelope_BootstrapResponse{BootstrapResponse: p}))
		for j := range p.Dispatchers {
			if p.Dispatchers[j].Id.Lo != uint64(total+j+1) {
				t.Fatalf("piece %d: status %d is dispatcher %d, want %d", i, j, p.Dispatchers[j].Id.Lo, total+j+1)
			}
		}
		total += len(p.Dispatchers)
		if p.Chunk.Index != uint32(i) || p.Chunk.Total != uint32(len(pieces)) || p.RequestId != 3 {
			t.Fatalf("piece %d is numbered %v request %d", i, p.Chunk, p.RequestId)
		}
	}
	t.Logf("bootstrap answer of %d dispatchers: one envelope %d bytes (%.1f B a status); in %d pieces the largest is %d bytes",
		n, whole, float64(whole)/n, len(pieces), largest)
	if total != n {
		t.Fatalf("pieces hold %d statuses, want %d", total, n)
	}
	if largest > 4<<20 || largest > DefaultChunkBytes+1024 {
		t.Fatalf("largest piece %d bytes: over the budget %d (and the 4 MiB bound)", largest, DefaultChunkBytes)
	}

	hb := &heartbeatpb.HeartBeatRequest{Full: true, Statuses: statuses(n), Digest: &heartbeatpb.SetDigest{Count: n}}
	lpieces := chunkHeartbeat(hb, DefaultChunkBytes)
	largest, total = 0, 0
	for _, p := range lpieces {
		largest = max(largest, p.Size())
		total += len(p.Statuses)
	}
	t.Logf("full listing of %d dispatchers: whole %d bytes; in %d pieces the largest body is %d bytes", n, hb.Size(),
		len(lpieces), largest)
	if total != n || largest > DefaultChunkBytes+1024 || lpieces[len(lpieces)-1].Digest == nil {
		t.Fatalf("listing pieces: %d statuses, largest %d bytes, digest on the last %v", total, largest,
			lpieces[len(lpieces)-1].Digest)
	}
}

// TestChunkLists cuts an answer whose items span the three lists at several budgets and checks
// that the pieces hold every item once, in order, each within its budget unless alone.
func TestChunkLists(t *testing.T) {
	resp := &heartbeatpb.MaintainerBootstrapResponse{Dispatchers: statuses(7), CheckpointTs: 9}
	for i := 0; i < 3; i++ {
		resp.Operators = append(resp.Operators, heartbeatpb.InFlightOperator{FinalCheckpointTs: uint64(i + 1)})
	}
	resp.MergeOperators = append(resp.MergeOperators, heartbeatpb.InFlightMerge{MergedCheckpointTs: 7})
	for _, budget := range []int{1, 60, 100, 150, 400, 1 << 20} {
		pieces := chunkBootstrap(resp, budget)
		var got heartbeatpb.MaintainerBootstrapResponse
		for i, p := range pieces {
			got.Dispatchers = append(got.Dispatchers, p.Dispatchers...)
			got.Operators = append(got.Operators, p.Operators...)
			got.MergeOperators = append(got.MergeOperators, p.MergeOperators...)
			items := len(p.Dispatchers) + len(p.Operators) + len(p.MergeOperators)
			if items == 0 || (items > 1 && p.Size() > budget+64) {
				t.Fatalf("budget %d: piece %d has %d items, %d bytes", budget, i, items, p.Size())
			}
			if p.CheckpointTs != 9 {
				t.Fatalf("budget %d: piece %d lost the checkpoint", budget, i)
			}
		}
		got.CheckpointTs = resp.CheckpointTs
		if !got.Equal(&heartbeatpb.MaintainerBootstrapResponse{Dispatchers: resp.Dispatchers, Operators: resp.Operators,
			MergeOperators: resp.MergeOperators, CheckpointTs: 9}) {
			t.Fatalf("budget %d: %d pieces do not add up to the answer", budget, len(pieces))
		}
		if (len(pieces) == 1) != (pieces[0].Chunk == nil) {
			t.Fatalf("budget %d: %d pieces, first numbered %v", budget, len(pieces), pieces[0].Chunk)
		}
	}
}

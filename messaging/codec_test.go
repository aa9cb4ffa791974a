package messaging

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// sampleEnvelopes covers every body type, so the fuzz seeds reach every decoder.
func sampleEnvelopes() []*heartbeatpb.Envelope {
	id := heartbeatpb.DispatcherID{Hi: 3, Lo: 9}
	sp := heartbeatpb.TableSpan{TableId: 5, StartKey: []byte("t\x00\x00\x00\x00\x00\x00\x00\x05"), EndKey: []byte("t\x00\x00\x00\x00\x00\x00\x00\x06")}
	desc := heartbeatpb.OperatorDescriptor{
		Id: heartbeatpb.OperatorID{Epoch: 3, Seq: 1}, Kind: heartbeatpb.OpMove,
		Sources: []heartbeatpb.SpanPlacement{{Span: sp, DispatcherId: id, NodeId: "a"}},
		Targets: []heartbeatpb.SpanPlacement{{Span: sp, DispatcherId: id, NodeId: "b"}},
	}
	req := heartbeatpb.ScheduleDispatcherRequest{
		Config: heartbeatpb.DispatcherConfig{Id: id, Span: sp, StartTs: 42}, Action: heartbeatpb.ActionRemove,
		OperatorType: heartbeatpb.OpMove, Operator: desc,
	}
	merge := heartbeatpb.MergeDispatcherRequest{SourceIds: []heartbeatpb.DispatcherID{id, id}, MergedId: id, MergedSpan: sp, Operator: desc}
	status := heartbeatpb.DispatcherStatus{Id: id, Span: sp, State: heartbeatpb.StateWorking, CheckpointTs: 40, Load: 7}
	envs := []*heartbeatpb.Envelope{
		{Body: &heartbeatpb.Envelope_Schedule{Schedule: &heartbeatpb.ScheduleDispatcherRequests{Requests: []heartbeatpb.ScheduleDispatcherRequest{req}}}},
		{Body: &heartbeatpb.Envelope_Merge{Merge: &heartbeatpb.MergeDispatcherRequests{Requests: []heartbeatpb.MergeDispatcherRequest{merge}}}},
		{Body: &heartbeatpb.Envelope_Heartbeat{Heartbeat: &heartbeatpb.HeartBeatRequest{Statuses: []heartbeatpb.DispatcherStatus{status}, Full: true,
			Rejections: []heartbeatpb.RequestRejection{{OperatorId: desc.Id, DispatcherId: id, Reason: "stale"}}}}},
		{Body: &heartbeatpb.Envelope_HeartbeatResponse{HeartbeatResponse: &heartbeatpb.HeartBeatResponse{Finished: []heartbeatpb.OperatorID{desc.Id}, CheckpointTs: 9}}},
		{Body: &heartbeatpb.Envelope_BootstrapRequest{BootstrapRequest: &heartbeatpb.MaintainerBootstrapRequest{Config: heartbeatpb.ChangefeedConfig{
			Id: "cf", StartTs: 1, Tables: []heartbeatpb.TableConfig{{TableId: 5, Load: 10}}, Redo: true}}}},
		{Body: &heartbeatpb.Envelope_BootstrapResponse{BootstrapResponse: &heartbeatpb.MaintainerBootstrapResponse{
			Dispatchers:    []heartbeatpb.DispatcherStatus{status},
			Operators:      []heartbeatpb.InFlightOperator{{Request: req, Stage: heartbeatpb.StageApplied, FinalCheckpointTs: 40}},
			MergeOperators: []heartbeatpb.InFlightMerge{{Request: merge, Stage: heartbeatpb.MergeCreated}}, CheckpointTs: 40}}},
	}
	for i, env := range envs {
		env.ClusterId, env.Changefeed, env.From, env.To = testCluster, "cf", "a", "b"
		env.Epoch, env.Incarnation, env.Seq = 3, 1, uint64(i+1)
	}
	return envs
}

func seedCorpus(t testing.TB) [][]byte {
	envs := sampleEnvelopes()
	batch, err := (&heartbeatpb.Batch{Envelopes: envs}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	seeds := [][]byte{nil, {}, batch, {0x0a}, {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, {0xff}}
	for _, env := range envs {
		b, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// decodeAll runs every decoding path of the codec over data; none may panic.
func decodeAll(data []byte) {
	c := gogoCodec{}
	_ = c.Unmarshal(data, &heartbeatpb.Batch{})
	_ = c.Unmarshal(data, &heartbeatpb.Envelope{})
	f := &recvFrame{}
	if err := c.Unmarshal(data, f); err != nil {
		panic("a recvFrame must carry its decode error, not return it")
	}
}

func FuzzCodecUnmarshal(f *testing.F) {
	for _, s := range seedCorpus(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { decodeAll(data) })
}

// TestCodecUnmarshalRandomInputs is the fuzz target's deterministic cousin that runs in every
// `go test`: random bytes, truncations and bit flips of valid encodings.
func TestCodecUnmarshalRandomInputs(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	seeds := seedCorpus(t)
	for i := 0; i < 10000; i++ {
		var data []byte
		switch i % 3 {
		case 0:
			data = make([]byte, rnd.IntN(256))
			for j := range data {
				data[j] = byte(rnd.UintN(256))
			}
		case 1:
			s := seeds[rnd.IntN(len(seeds))]
			data = s[:rnd.IntN(len(s)+1)]
		default:
			data = bytes.Clone(seeds[rnd.IntN(len(seeds))])
			for k := 0; k < 1+rnd.IntN(4) && len(data) > 0; k++ {
				data[rnd.IntN(len(data))] ^= byte(1 << rnd.UintN(8))
			}
		}
		decodeAll(data)
	}
}

func TestCodecRoundTripAndErrors(t *testing.T) {
	c := gogoCodec{}
	if c.Name() != "gogoproto" {
		t.Fatalf("codec name %q", c.Name())
	}
	in := &heartbeatpb.Batch{Envelopes: sampleEnvelopes()}
	data, err := c.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out heartbeatpb.Batch
	if err := c.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if !in.Equal(&out) {
		t.Fatalf("round trip changed the batch:\n%v\n%v", in, &out)
	}
	f := &recvFrame{}
	if err := c.Unmarshal(data, f); err != nil || f.err != nil || !in.Equal(&f.batch) {
		t.Fatalf("frame decode: %v %v", err, f.err)
	}
	if err := c.Unmarshal(data[:len(data)-1], f); err != nil || f.err == nil || len(f.batch.Envelopes) != 0 {
		t.Fatalf("truncated frame: err %v, frame err %v, %d envelopes", err, f.err, len(f.batch.Envelopes))
	}
	if _, err := c.Marshal("not a message"); err == nil {
		t.Fatal("marshalled a string")
	}
	if err := c.Unmarshal(data, new(int)); err == nil {
		t.Fatal("unmarshalled into an int")
	}
}

package heartbeatpb

import (
	"math/rand"
	"testing"
)

// decoder is anything generated here that decodes itself from bytes.
type decoder interface {
	Unmarshal([]byte) error
	Marshal() ([]byte, error)
}

// everyMessage returns a fresh value of every message type on the wire.
func everyMessage() []decoder {
	return []decoder{
		&Batch{}, &Envelope{}, &ScheduleDispatcherRequests{}, &ScheduleDispatcherRequest{},
		&MergeDispatcherRequests{}, &MergeDispatcherRequest{}, &HeartBeatRequest{}, &HeartBeatResponse{},
		&MaintainerBootstrapRequest{}, &MaintainerBootstrapResponse{}, &DispatcherStatus{},
		&OperatorDescriptor{}, &SpanPlacement{}, &TableSpan{}, &DispatcherID{}, &OperatorID{},
		&ChangefeedConfig{}, &TableConfig{}, &InFlightOperator{}, &InFlightMerge{}, &RequestRejection{},
		&DispatcherConfig{},
	}
}

// sampleEnvelope is a valid, fully populated envelope used as the seed for mutations.
func sampleEnvelope() *Envelope {
	sp := TableSpan{TableId: 7, StartKey: []byte("t\x00\x00\x00\x00\x00\x00\x00\x07"), EndKey: []byte("t\x00\x00\x00\x00\x00\x00\x00\x08")}
	desc := OperatorDescriptor{
		Id: OperatorID{Epoch: 9, Seq: 1}, Kind: OpMove,
		Sources: []SpanPlacement{{Span: sp, DispatcherId: DispatcherID{Hi: 9, Lo: 1}, NodeId: "a"}},
		Targets: []SpanPlacement{{Span: sp, DispatcherId: DispatcherID{Hi: 9, Lo: 2}, NodeId: "b"}},
	}
	return &Envelope{
		ClusterId: "c", Changefeed: "cf", From: "a", To: "b", Epoch: 9, Incarnation: 9, Seq: 3,
		Body: &Envelope_Schedule{Schedule: &ScheduleDispatcherRequests{Requests: []ScheduleDispatcherRequest{{
			Config: DispatcherConfig{Id: DispatcherID{Hi: 9, Lo: 2}, Span: sp, StartTs: 100},
			Action: ActionCreate, OperatorType: OpMove, Operator: desc,
		}}}},
	}
}

func TestRoundTrip(t *testing.T) {
	env := sampleEnvelope()
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var got Envelope
	if err := got.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(env) {
		t.Fatalf("round trip changed the envelope:\n%v\n%v", env, &got)
	}
}

// TestMalformedBytesNeverPanic feeds random, truncated and bit-flipped bytes to every decoder.
// Any panic fails the test; errors are the expected outcome for most inputs.
func TestMalformedBytesNeverPanic(t *testing.T) {
	seed, err := sampleEnvelope().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(1))
	inputs := [][]byte{nil, {}, {0xff}, {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}}
	for i := 0; i <= len(seed); i++ {
		inputs = append(inputs, seed[:i])
	}
	for i := 0; i < 3000; i++ {
		mutated := append([]byte(nil), seed...)
		for j := 0; j < 1+r.Intn(4); j++ {
			mutated[r.Intn(len(mutated))] ^= byte(1 << r.Intn(8))
		}
		inputs = append(inputs, mutated)
		random := make([]byte, r.Intn(64))
		r.Read(random)
		inputs = append(inputs, random)
	}
	var rejected int
	for _, in := range inputs {
		for _, m := range everyMessage() {
			// A panic here fails the test with its stack.
			if err := m.Unmarshal(in); err != nil {
				rejected++
			}
		}
	}
	if rejected == 0 {
		t.Fatal("no input was rejected: the mutations did not reach the decoders")
	}
}

// FuzzEnvelope lets `go test -fuzz FuzzEnvelope ./heartbeatpb` search further.
func FuzzEnvelope(f *testing.F) {
	seed, _ := sampleEnvelope().Marshal()
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, m := range everyMessage() {
			if err := m.Unmarshal(in); err == nil {
				// Whatever decodes must encode again.
				if _, err := m.Marshal(); err != nil {
					t.Fatalf("%T decoded but does not encode: %v", m, err)
				}
			}
		}
	})
}

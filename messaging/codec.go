package messaging

import (
	"fmt"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// codecName is the gRPC content-subtype of the gogo codec. Both ends force the codec, so a peer
// speaking anything else fails at the first message instead of being half understood.
const codecName = "gogoproto"

// gogoMarshaler and gogoUnmarshaler are what gogo-generated messages implement.
type gogoMarshaler interface{ Marshal() ([]byte, error) }
type gogoUnmarshaler interface{ Unmarshal([]byte) error }

// gogoCodec is a grpc encoding.Codec over the generated Marshal/Unmarshal methods.
type gogoCodec struct{}

func (gogoCodec) Name() string { return codecName }

func (gogoCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(gogoMarshaler)
	if !ok {
		return nil, fmt.Errorf("messaging: codec cannot marshal %T", v)
	}
	return m.Marshal()
}

// Unmarshal decodes data into v. A *recvFrame never fails here: its decode error is kept in the
// frame, so gRPC does not tear the stream down for one bad batch and the receiver can count it.
func (gogoCodec) Unmarshal(data []byte, v any) error {
	if f, ok := v.(*recvFrame); ok {
		f.err = decodeBatch(data, &f.batch)
		return nil
	}
	u, ok := v.(gogoUnmarshaler)
	if !ok {
		return fmt.Errorf("messaging: codec cannot unmarshal into %T", v)
	}
	return safeUnmarshal(data, u)
}

// recvFrame is what a receiver reads from a stream: a batch, or why it could not be decoded.
type recvFrame struct {
	batch heartbeatpb.Batch
	err   error
}

func decodeBatch(data []byte, b *heartbeatpb.Batch) error {
	b.Reset()
	if err := safeUnmarshal(data, b); err != nil {
		b.Reset()
		return err
	}
	return nil
}

// safeUnmarshal turns a panic inside generated decoding code into an error: input from the
// network must never crash the node, even if the generator has a bug.
func safeUnmarshal(data []byte, u gogoUnmarshaler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("messaging: decode %T: panic: %v", u, r)
		}
	}()
	if err := u.Unmarshal(data); err != nil {
		return fmt.Errorf("messaging: decode %T: %w", u, err)
	}
	return nil
}

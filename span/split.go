package span

import (
	"bytes"
	"fmt"
	"math/big"
	"sort"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// splitKeyLen is how many bytes a computed split key may use; enough to cut any table span
// many times over before two neighbours collide.
const splitKeyLen = 24

// Split cuts s into k adjacent pieces of about equal key width. It fails when k < 2 or s is
// too narrow to hold k distinct pieces.
func Split(s heartbeatpb.TableSpan, k int) ([]heartbeatpb.TableSpan, error) {
	if err := Validate(s); err != nil {
		return nil, err
	}
	if k < 2 {
		return nil, fmt.Errorf("span: split of %s into %d pieces: need at least 2", String(s), k)
	}
	// Treat keys as fixed-width big-endian numbers: pad both to the same width, interpolate.
	width := splitKeyLen
	if n := len(s.EndKey); n > width {
		width = n
	}
	if n := len(s.StartKey); n > width {
		width = n
	}
	lo := new(big.Int).SetBytes(pad(s.StartKey, width))
	hi := new(big.Int).SetBytes(pad(s.EndKey, width))
	step := new(big.Int).Sub(hi, lo)
	step.Div(step, big.NewInt(int64(k)))
	if step.Sign() == 0 {
		return nil, fmt.Errorf("span: %s is too narrow to split into %d pieces", String(s), k)
	}
	out := make([]heartbeatpb.TableSpan, 0, k)
	prev := s.StartKey
	cur := new(big.Int).Set(lo)
	for i := 1; i < k; i++ {
		cur.Add(cur, step)
		key := trimZeros(cur.FillBytes(make([]byte, width)), tableKeyLen)
		if bytes.Compare(key, prev) <= 0 || bytes.Compare(key, s.EndKey) >= 0 {
			return nil, fmt.Errorf("span: %s is too narrow to split into %d pieces", String(s), k)
		}
		out = append(out, heartbeatpb.TableSpan{TableId: s.TableId, StartKey: prev, EndKey: key})
		prev = key
	}
	out = append(out, heartbeatpb.TableSpan{TableId: s.TableId, StartKey: prev, EndKey: s.EndKey})
	return out, nil
}

func pad(b []byte, width int) []byte {
	out := make([]byte, width)
	copy(out, b)
	return out
}

// trimZeros drops trailing zero bytes beyond min: t<n>\x00\x00 sorts after t<n> and the two must
// stay distinct keys, but trailing zeros beyond the table key carry no order information here
// because every computed key is compared only with other keys of the same padded width.
func trimZeros(b []byte, min int) []byte {
	n := len(b)
	for n > min && b[n-1] == 0 {
		n--
	}
	return b[:n]
}

// Merge joins adjacent spans of one table, given in any order, into one span.
func Merge(spans []heartbeatpb.TableSpan) (heartbeatpb.TableSpan, error) {
	if len(spans) < 2 {
		return heartbeatpb.TableSpan{}, fmt.Errorf("span: merge needs at least 2 spans, got %d", len(spans))
	}
	sorted := append([]heartbeatpb.TableSpan(nil), spans...)
	sort.Slice(sorted, func(i, j int) bool { return Compare(sorted[i], sorted[j]) < 0 })
	for i := 1; i < len(sorted); i++ {
		if !Adjacent(sorted[i-1], sorted[i]) {
			return heartbeatpb.TableSpan{}, fmt.Errorf("span: merge: %s and %s are not adjacent",
				String(sorted[i-1]), String(sorted[i]))
		}
	}
	return heartbeatpb.TableSpan{
		TableId:  sorted[0].TableId,
		StartKey: sorted[0].StartKey,
		EndKey:   sorted[len(sorted)-1].EndKey,
	}, nil
}

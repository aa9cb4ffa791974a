package etcdcdc

import (
	"bytes"
	"fmt"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// keyRange is a source key range [start, end); end nil means no upper bound.
type keyRange struct {
	start, end []byte
}

// empty reports whether r holds no key.
func (r keyRange) empty() bool { return r.end != nil && bytes.Compare(r.start, r.end) >= 0 }

// String prints r for logs and errors.
func (r keyRange) String() string {
	if r.end == nil {
		return fmt.Sprintf("[%q, ∞)", r.start)
	}
	return fmt.Sprintf("[%q, %q)", r.start, r.end)
}

// SourceRange returns the source key range of a span of an etcd-dispatcher changefeed: the
// span keys past the table key map to strip+suffix, the table's end to the range's end, and the
// result is clipped to the table's range. It fails for a span outside the tables.
func SourceRange(src *etcdutil.SourceConfig, s heartbeatpb.TableSpan) (keyRange, error) {
	if err := span.Validate(s); err != nil {
		return keyRange{}, err
	}
	t, ok := src.TableRange(s.TableId)
	if !ok {
		return keyRange{}, fmt.Errorf("etcdcdc: span %s: table %d is not one of the %d source key ranges", span.String(s), s.TableId, src.TableCount())
	}
	strip := []byte(src.TableStrip(s.TableId))
	tableStart := span.TableStartKey(s.TableId)
	toSource := func(k []byte) []byte {
		// A key of the table that does not start with its key (the table's end, or a short
		// key just below it that a peer may send) sorts after every key that does.
		if !bytes.HasPrefix(k, tableStart) {
			if t.End == "" {
				return nil
			}
			return []byte(t.End)
		}
		return append(append([]byte(nil), strip...), k[len(tableStart):]...)
	}
	r := keyRange{start: toSource(s.StartKey), end: toSource(s.EndKey)}
	if bytes.Compare(r.start, []byte(t.Start)) < 0 {
		r.start = []byte(t.Start)
	}
	if t.End != "" && (r.end == nil || bytes.Compare(r.end, []byte(t.End)) > 0) {
		r.end = []byte(t.End)
	}
	return r, nil
}

// SpanKeyOf maps a source key to the span key that stands for it: the inverse of SourceRange.
// It finds the table (source key range) that holds key and returns the table's ID and
// t<id>+suffix, where suffix is the key less the table's strip; ok is false when no table of
// src holds the key. The span whose range holds the span key is the span whose source range
// holds the source key, since the map keeps order.
func SpanKeyOf(src *etcdutil.SourceConfig, key []byte) (table int64, spanKey []byte, ok bool) {
	id, ok := src.TableOf(string(key))
	if !ok {
		return 0, nil, false
	}
	strip := src.TableStrip(id)
	if !bytes.HasPrefix(key, []byte(strip)) {
		// Cannot happen: every key between two bounds starts with what they share. Refuse
		// rather than map it somewhere wrong.
		return 0, nil, false
	}
	return id, append(span.TableStartKey(id), key[len(strip):]...), true
}

// SourceBounds is SourceRange as an etcdutil.KeyRange (End "" for no upper bound), for
// answers that name a span's source keys.
func SourceBounds(src *etcdutil.SourceConfig, s heartbeatpb.TableSpan) (etcdutil.KeyRange, error) {
	r, err := SourceRange(src, s)
	if err != nil {
		return etcdutil.KeyRange{}, err
	}
	return etcdutil.KeyRange{Start: string(r.start), End: string(r.end)}, nil
}

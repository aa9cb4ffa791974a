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
	tables := src.TableRanges()
	if s.TableId < 1 || s.TableId > int64(len(tables)) {
		return keyRange{}, fmt.Errorf("etcdcdc: span %s: table %d is not one of the %d source key ranges", span.String(s), s.TableId, len(tables))
	}
	t := tables[s.TableId-1]
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

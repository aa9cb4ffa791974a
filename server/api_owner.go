package server

import (
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/maintainer"
	"github.com/tidemark/tidemark/span"
)

// OwnerResponse is /api/v1/changefeeds/{id}/owner?key=KEY: which node and dispatcher own KEY now.
type OwnerResponse struct {
	Changefeed string `json:"changefeed"`
	Key        string `json:"key"`     // as asked
	KeyHex     string `json:"key_hex"` // the span key it means (for an etcd changefeed, the source key mapped into its table)
	Table      *int64 `json:"table"`   // the table whose range holds the key; null: not a table key
	// TableRange is the source key range of Table, for a changefeed of the etcd dispatcher.
	TableRange *etcdutil.KeyRange `json:"table_range,omitempty"`
	Maintainer string             `json:"maintainer"`
	// Epoch is the maintainer's term: an owner named here acts on requests of this epoch.
	Epoch        uint64      `json:"epoch"`
	Bootstrapped bool        `json:"bootstrapped"`
	Spans        []OwnerSpan `json:"spans"` // one per mode
}

// OwnerSpan is a span holding the key, as the span listing shows it, with the source key range
// it covers for a changefeed of the etcd dispatcher.
type OwnerSpan struct {
	api.SpanInfo
	SourceRange *SourceKeyRange `json:"source_range,omitempty"`
}

// SourceKeyRange is a source key range [Start, End) (End "" for no bound) as text and in hex:
// a bound computed by a split is arbitrary bytes, which JSON text cannot carry.
type SourceKeyRange struct {
	Start    string `json:"start"`
	End      string `json:"end,omitempty"`
	StartHex string `json:"start_hex"`
	EndHex   string `json:"end_hex,omitempty"`
}

// Contains reports whether key is in the range, judged by the hex bounds.
func (r SourceKeyRange) Contains(key []byte) bool {
	start, err1 := hex.DecodeString(r.StartHex)
	end, err2 := hex.DecodeString(r.EndHex)
	return err1 == nil && err2 == nil && etcdutil.KeyRange{Start: string(start), End: string(end)}.Contains(string(key))
}

// handleOwner answers who owns a key. For a changefeed of the etcd dispatcher KEY is a source
// etcd key, taken as it is; otherwise it takes the forms of span.ParseKey (t<ID>, t<ID>:<HEX>,
// 0x<HEX>). 404 when no span covers it, 503 while the maintainer restores the schedule (its
// span DB is incomplete until then), 400 for a malformed key.
func (s *Server) handleOwner(w http.ResponseWriter, r *http.Request) {
	cf := r.PathValue("id")
	raw, given := r.URL.Query()["key"]
	if !given || raw[0] == "" {
		writeError(w, http.StatusBadRequest, "parameter key is required: a source key (etcd dispatcher), or t<ID>, t<ID>:<HEX> or 0x<HEX>", nil)
		return
	}
	out := OwnerResponse{Changefeed: cf, Key: raw[0], Maintainer: s.nodeID}
	var src *etcdutil.SourceConfig
	if wk := s.workers.get(cf); wk != nil {
		if info, _ := wk.info.Get(); info.DispatcherKind() == etcdutil.EtcdDispatcher && info.Source != nil {
			src = info.Source
		}
	}
	var key []byte
	if src != nil {
		id, sk, ok := etcdcdc.SpanKeyOf(src, []byte(out.Key))
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("key %q is not covered by changefeed %s: its source key ranges are %s",
				out.Key, cf, src.Describe()), nil)
			return
		}
		tr, _ := src.TableRange(id)
		key, out.Table, out.TableRange = sk, &id, &tr
	} else {
		var err error
		if key, err = span.ParseKey(out.Key); err != nil {
			writeError(w, http.StatusBadRequest, "parameter key: "+err.Error(), nil)
			return
		}
		if id, ok := span.TableOf(key); ok {
			out.Table = &id
		}
	}
	out.KeyHex = hex.EncodeToString(key)
	var ans maintainer.OwnerAnswer
	if !s.askMaintainer(w, r, cf, func(m *maintainer.Maintainer) { ans = m.Owner(key) }) {
		return
	}
	out.Epoch, out.Bootstrapped, out.Spans = ans.Epoch, ans.Bootstrapped, make([]OwnerSpan, 0, len(ans.Spans))
	for _, si := range ans.Spans {
		os := OwnerSpan{SpanInfo: si}
		if src != nil {
			os.SourceRange = sourceRangeOf(src, si)
		}
		out.Spans = append(out.Spans, os)
	}
	switch {
	case !ans.Bootstrapped:
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the maintainer of %s (epoch %d) is still restoring the schedule; retry shortly",
			cf, ans.Epoch), nil)
	case len(ans.Spans) == 0 && out.Table == nil:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no span of changefeed %s covers key %s (%x): it is not a table key (t<ID>...)",
			cf, out.Key, key), nil)
	case len(ans.Spans) == 0:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no span of changefeed %s covers key %s: table %d is not in the changefeed",
			cf, out.Key, *out.Table), nil)
	default:
		writeJSON(w, http.StatusOK, out)
	}
}

// describeRanges prints key ranges for an error message: [start, end), end ∞ when unbounded.
// sourceRangeOf is the source key range of a listed span (its keys are hex, as the maintainer
// wrote them); nil if they do not decode.
func sourceRangeOf(src *etcdutil.SourceConfig, si api.SpanInfo) *SourceKeyRange {
	start, err1 := hex.DecodeString(si.StartKey)
	end, err2 := hex.DecodeString(si.EndKey)
	if err1 != nil || err2 != nil {
		return nil
	}
	kr, err := etcdcdc.SourceBounds(src, heartbeatpb.TableSpan{TableId: si.Table, StartKey: start, EndKey: end})
	if err != nil {
		return nil
	}
	return &SourceKeyRange{Start: kr.Start, End: kr.End, StartHex: hex.EncodeToString([]byte(kr.Start)), EndHex: hex.EncodeToString([]byte(kr.End))}
}

package server

import (
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/tidemark/tidemark/maintainer"
	"github.com/tidemark/tidemark/span"
)

// OwnerResponse is /api/v1/changefeeds/{id}/owner?key=KEY: which node and dispatcher own KEY now.
type OwnerResponse struct {
	Changefeed string `json:"changefeed"`
	Key        string `json:"key"`     // as asked
	KeyHex     string `json:"key_hex"` // the key it means
	Table      *int64 `json:"table"`   // the table whose range holds the key; null: not a table key
	Maintainer string `json:"maintainer"`
	maintainer.OwnerAnswer
}

// handleOwner answers who owns a key. KEY takes the forms of span.ParseKey (t<ID>,
// t<ID>:<HEX>, 0x<HEX>). 404 when no span covers it, 503 while the maintainer restores the
// schedule (its span DB is incomplete until then), 400 for a malformed key.
func (s *Server) handleOwner(w http.ResponseWriter, r *http.Request) {
	cf := r.PathValue("id")
	raw := r.URL.Query().Get("key")
	if raw == "" {
		writeError(w, http.StatusBadRequest, "parameter key is required: t<ID>, t<ID>:<HEX> or 0x<HEX>", nil)
		return
	}
	key, err := span.ParseKey(raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, "parameter key: "+err.Error(), nil)
		return
	}
	var ans maintainer.OwnerAnswer
	if !s.askMaintainer(w, r, cf, func(m *maintainer.Maintainer) { ans = m.Owner(key) }) {
		return
	}
	out := OwnerResponse{Changefeed: cf, Key: raw, KeyHex: hex.EncodeToString(key), Maintainer: s.nodeID, OwnerAnswer: ans}
	if id, ok := span.TableOf(key); ok {
		out.Table = &id
	}
	switch {
	case !ans.Bootstrapped:
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the maintainer of %s (epoch %d) is still restoring the schedule; retry shortly",
			cf, ans.Epoch), nil)
	case len(ans.Spans) == 0 && out.Table == nil:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no span of changefeed %s covers key %s (%x): it is not a table key (t<ID>...)",
			cf, raw, key), nil)
	case len(ans.Spans) == 0:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no span of changefeed %s covers key %s: table %d is not in the changefeed",
			cf, raw, *out.Table), nil)
	default:
		writeJSON(w, http.StatusOK, out)
	}
}

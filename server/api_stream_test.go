package server

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/tidemark/tidemark/api"
)

// The streamed span page decodes to exactly the page, whatever its size and cursor.
func TestWriteSpanPageDecodes(t *testing.T) {
	for _, page := range []api.SpanPage{
		{Spans: []api.SpanInfo{}, Matched: 0},
		{Spans: []api.SpanInfo{{Span: "1", Table: 1, State: "absent", Checkpoint: 7}}, Matched: 1},
		{Spans: []api.SpanInfo{
			{Span: "1", Table: 1, Mode: "default", State: "replicating", Node: "n1", Dispatcher: "5-1", Checkpoint: 9},
			{Span: "2", Table: 2, Mode: "redo", State: "error", Error: `sink "x" failed`, Operator: "5.3"},
		}, Matched: 40, Next: 2},
	} {
		rec := httptest.NewRecorder()
		writeSpanPage(rec, page)
		var got api.SpanPage
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("page %+v: %v in %q", page, err, rec.Body.String())
		}
		if !reflect.DeepEqual(got, page) {
			t.Fatalf("decoded %+v, wrote %+v", got, page)
		}
	}
}

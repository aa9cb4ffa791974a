package etcdcdc

import (
	"fmt"
	"testing"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// Every key of a table's source range falls in exactly one span of a split, and keys outside
// the range in none.
func TestSourceRangePartitionsTheTable(t *testing.T) {
	srcs := []*etcdutil.SourceConfig{
		{Prefix: "/registry/"},
		{Ranges: []etcdutil.KeyRange{{Start: "a", End: "m"}, {Start: "user/100", End: "user/200"}, {Start: "z"}}},
		{TableKeys: &etcdutil.TableKeys{Prefix: "/s/t", Count: 12, Width: 3}},
	}
	keys := []string{"/registry/", "/registry/a", "/registry/pods/x", "/registry/\xff\xff", "/registry0", "/regist",
		"a", "abc", "l\xff", "m", "user/100", "user/150/x", "user/199", "user/2", "user/200", "z", "zzz", "\xff",
		"/s/t001/", "/s/t001/a", "/s/t012/x/y", "/s/t007/\xff", "/s/t013/x", "/s/t000/x", "/s/t01/x", "/s/t0010/", "/s/t001", "/s/t", "/s/tabc/"}
	for _, src := range srcs {
		for id := int64(1); id <= int64(len(src.TableRanges())); id++ {
			table := src.TableRanges()[id-1]
			for _, n := range []int{1, 2, 3, 7} {
				spans := []heartbeatpb.TableSpan{span.TableSpan(id)}
				if n > 1 {
					var err error
					if spans, err = span.Split(span.TableSpan(id), n); err != nil {
						t.Fatal(err)
					}
				}
				for _, k := range keys {
					hits := 0
					for _, s := range spans {
						r, err := SourceRange(src, s)
						if err != nil {
							t.Fatal(err)
						}
						if !r.empty() && k >= string(r.start) && (r.end == nil || k < string(r.end)) {
							hits++
						}
					}
					want := 0
					if table.Contains(k) {
						want = 1
					}
					if hits != want {
						t.Errorf("source %+v table %d in %d spans: key %q in %d spans, want %d", src, id, n, k, hits, want)
					}
				}
			}
		}
	}
	if _, err := SourceRange(srcs[0], span.TableSpan(2)); err == nil {
		t.Error("a span of table 2 of a one-prefix source was mapped")
	}
}

// A span key inside the table that is not prefixed by the table key (a short key just below
// the next table's, which a peer may send) maps to the table's end instead of panicking.
func TestSourceRangeOddKeys(t *testing.T) {
	src := &etcdutil.SourceConfig{}
	for i := range 255 {
		src.Ranges = append(src.Ranges, etcdutil.KeyRange{Start: fmt.Sprintf("r%03d/", i+1), End: fmt.Sprintf("r%03d0", i+1)})
	}
	s := heartbeatpb.TableSpan{TableId: 255, StartKey: span.TableStartKey(255), EndKey: span.TableStartKey(256)[:8]}
	if err := span.Validate(s); err != nil {
		t.Fatalf("the odd span is not valid, so the test tests nothing: %v", err)
	}
	r, err := SourceRange(src, s)
	if err != nil || string(r.start) != "r255/" || string(r.end) != "r2550" {
		t.Fatalf("source range %v, %v; want [r255/, r2550)", r, err)
	}
}

// SpanKeyOf is the inverse of SourceRange: a source key maps into its table, and the one span
// of a split whose span range holds the mapped key is the one whose source range holds the
// source key; keys outside every table map nowhere.
func TestSpanKeyOf(t *testing.T) {
	srcs := []*etcdutil.SourceConfig{
		{Prefix: "/registry/"},
		{Ranges: []etcdutil.KeyRange{{Start: "a", End: "m"}, {Start: "user/100", End: "user/200"}, {Start: "z"}}},
		{TableKeys: &etcdutil.TableKeys{Prefix: "/s/t", Count: 12, Width: 3}},
	}
	keys := []string{"/registry/", "/registry/a", "/registry/pods/x", "/registry/\xff\xff", "/registry0", "/regist",
		"a", "abc", "l\xff", "m", "user/100", "user/150/x", "user/199", "user/2", "user/200", "z", "zzz", "\xff",
		"/s/t001/", "/s/t001/a", "/s/t012/x/y", "/s/t007/\xff", "/s/t013/x", "/s/t000/x", "/s/t01/x", "/s/t0010/", "/s/t001", "/s/t", "/s/tabc/", ""}
	mapped := 0
	for _, src := range srcs {
		for _, k := range keys {
			id, sk, ok := SpanKeyOf(src, []byte(k))
			want := int64(0)
			for i, r := range src.TableRanges() {
				if r.Contains(k) {
					want = int64(i + 1)
				}
			}
			if ok != (want != 0) || id != want {
				t.Errorf("source %+v: key %q in table %d (ok %v), want table %d", src, k, id, ok, want)
				continue
			}
			if !ok {
				continue
			}
			mapped++
			spans, err := span.Split(span.TableSpan(id), 5)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range spans {
				r, err := SourceBounds(src, s)
				if err != nil {
					t.Fatal(err)
				}
				if inSource := r.Contains(k); inSource != span.ContainsKey(s, sk) {
					t.Errorf("source %+v key %q (span key %x): span %s holds the span key %v, its source range %+v holds the key %v",
						src, k, sk, span.String(s), !inSource, r, inSource)
				}
			}
		}
	}
	if mapped < 10 {
		t.Fatalf("only %d keys mapped; the test checks too little", mapped)
	}
}

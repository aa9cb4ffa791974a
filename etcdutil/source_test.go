package etcdutil

import (
	"strings"
	"testing"
)

func etcdInfo(src *SourceConfig, sink *SinkConfig, tables int) ChangefeedInfo {
	info := ChangefeedInfo{ID: "cf", Dispatcher: EtcdDispatcher, Source: src, Sink: sink, State: StateNormal, SplitPieces: 2}
	for i := range tables {
		info.Tables = append(info.Tables, TableInfo{ID: int64(i + 1)})
	}
	return info
}

func TestValidateEtcdSource(t *testing.T) {
	ep := []string{"http://127.0.0.1:2379"}
	other := []string{"http://10.0.0.1:2379"}
	file := &SinkConfig{Kind: SinkFile}
	for _, tc := range []struct {
		name string
		info ChangefeedInfo
		want string // "" = valid
	}{
		{"prefix to file", etcdInfo(&SourceConfig{Endpoints: ep, Prefix: "/registry/"}, file, 1), ""},
		{"prefix mirrored in the same etcd", etcdInfo(&SourceConfig{Endpoints: ep, Prefix: "/a/"}, &SinkConfig{Kind: SinkEtcd, Endpoints: ep, Prefix: "/b/"}, 1), ""},
		{"ranges", etcdInfo(&SourceConfig{Endpoints: ep, Ranges: []KeyRange{{"a", "c"}, {"c", "e"}, {"x", ""}}}, file, 3), ""},
		{"overlapping ranges", etcdInfo(&SourceConfig{Endpoints: ep, Ranges: []KeyRange{{"a", "d"}, {"c", "e"}}}, file, 2), "must not overlap"},
		{"open range overlaps", etcdInfo(&SourceConfig{Endpoints: ep, Ranges: []KeyRange{{"x", ""}, {"y", "z"}}}, file, 2), "must not overlap"},
		{"empty range", etcdInfo(&SourceConfig{Endpoints: ep, Ranges: []KeyRange{{"b", "a"}}}, file, 1), "not above start"},
		{"prefix and ranges", etcdInfo(&SourceConfig{Endpoints: ep, Prefix: "/a/", Ranges: []KeyRange{{"a", "b"}}}, file, 1), "exactly one"},
		{"tidemark's keys", etcdInfo(&SourceConfig{Endpoints: ep, Prefix: "/tidemark/x/"}, file, 1), "tidemark's own keys"},
		{"a range over tidemark's keys", etcdInfo(&SourceConfig{Endpoints: ep, Ranges: []KeyRange{{"/", "0"}}}, file, 1), "tidemark's own keys"},
		{"all keys", etcdInfo(&SourceConfig{Endpoints: ep, Prefix: "\xff"}, file, 1), "covers every key"},
		{"no endpoints", etcdInfo(&SourceConfig{Prefix: "/a/"}, file, 1), "no endpoints"},
		{"bad endpoint", etcdInfo(&SourceConfig{Endpoints: []string{"127.0.0.1:2379"}, Prefix: "/a/"}, file, 1), "not an http"},
		{"tables do not match ranges", etcdInfo(&SourceConfig{Endpoints: ep, Prefix: "/a/"}, file, 2), "one per range"},
		{"no sink", etcdInfo(&SourceConfig{Endpoints: ep, Prefix: "/a/"}, nil, 1), "needs a sink"},
		{"mirror into its own source", etcdInfo(&SourceConfig{Endpoints: ep, Prefix: "/a/"}, &SinkConfig{Kind: SinkEtcd, Endpoints: ep, Prefix: "/a/m/"}, 1), "replicate itself"},
		{"mirror elsewhere may reuse the prefix", etcdInfo(&SourceConfig{Endpoints: ep, Prefix: "/a/"}, &SinkConfig{Kind: SinkEtcd, Endpoints: other, Prefix: "/a/"}, 1), ""},
		{"mirror without prefix", etcdInfo(&SourceConfig{Endpoints: ep, Prefix: "/a/"}, &SinkConfig{Kind: SinkEtcd, Endpoints: other}, 1), "needs the prefix"},
		{"unknown sink", etcdInfo(&SourceConfig{Endpoints: ep, Prefix: "/a/"}, &SinkConfig{Kind: "kafka"}, 1), "want \"file\" or \"etcd\""},
		{"half a TLS pair", etcdInfo(&SourceConfig{Endpoints: ep, Prefix: "/a/", TLS: &TLSFiles{CA: "ca", Cert: "c"}}, file, 1), "go together"},
		{"numbered tables", etcdInfo(&SourceConfig{Endpoints: ep, TableKeys: &TableKeys{Prefix: "/shop/t", Count: 3, Width: 4}}, file, 3), ""},
		{"numbered tables, width from count", etcdInfo(&SourceConfig{Endpoints: ep, TableKeys: &TableKeys{Prefix: "/shop/t", Count: 12}}, file, 12), ""},
		{"numbered tables and a prefix", etcdInfo(&SourceConfig{Endpoints: ep, Prefix: "/a/", TableKeys: &TableKeys{Prefix: "/shop/t", Count: 1}}, file, 1), "exactly one"},
		{"no tables", etcdInfo(&SourceConfig{Endpoints: ep, TableKeys: &TableKeys{Prefix: "/shop/t"}}, file, 1), "want 1 to"},
		{"too many tables", etcdInfo(&SourceConfig{Endpoints: ep, TableKeys: &TableKeys{Prefix: "/shop/t", Count: MaxTables + 1}}, file, 1), "want 1 to"},
		{"width too narrow", etcdInfo(&SourceConfig{Endpoints: ep, TableKeys: &TableKeys{Prefix: "/shop/t", Count: 100, Width: 2}}, file, 100), "want 3 to 18"},
		{"numbered tables over tidemark's keys", etcdInfo(&SourceConfig{Endpoints: ep, TableKeys: &TableKeys{Prefix: "/tidemark/t", Count: 1}}, file, 1), "tidemark's own keys"},
		{"numbered tables count mismatch", etcdInfo(&SourceConfig{Endpoints: ep, TableKeys: &TableKeys{Prefix: "/shop/t", Count: 3}}, file, 2), "one per range"},
		{"mirror inside numbered tables", etcdInfo(&SourceConfig{Endpoints: ep, TableKeys: &TableKeys{Prefix: "/shop/", Count: 3}}, &SinkConfig{Kind: SinkEtcd, Endpoints: ep, Prefix: "/shop/m/"}, 3), "replicate itself"},
		{"source on sim", ChangefeedInfo{ID: "cf", Tables: []TableInfo{{ID: 1}}, State: StateNormal, Source: &SourceConfig{}}, "only for dispatcher"},
	} {
		info := tc.info
		err := info.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error about %q", tc.name, err, tc.want)
		}
	}
	redo := etcdInfo(&SourceConfig{Endpoints: ep, Prefix: "/a/"}, file, 1)
	redo.Redo = true
	if err := redo.Validate(); err == nil || !strings.Contains(err.Error(), "no redo") {
		t.Errorf("redo: %v", err)
	}
}

// The source and sink survive the compact stored form.
func TestEtcdSourceRoundTrip(t *testing.T) {
	in := etcdInfo(&SourceConfig{Endpoints: []string{"http://a:1"}, Prefix: "/p/", TLS: &TLSFiles{CA: "ca.pem"}},
		&SinkConfig{Kind: SinkEtcd, Endpoints: []string{"http://b:1"}, Prefix: "/q/"}, 1)
	b, err := in.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var out ChangefeedInfo
	if err := out.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if out.Source == nil || out.Source.Prefix != "/p/" || out.Source.TLS.CA != "ca.pem" || out.Sink == nil || out.Sink.Prefix != "/q/" {
		t.Fatalf("round trip lost fields: %s -> %+v", b, out)
	}
	if err := out.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Numbered tables: a hundred thousand of them are one small stored value, each table's range is
// its own zero-padded prefix, and a key maps back to exactly the table whose range holds it.
func TestTableKeys(t *testing.T) {
	const n = 100_000
	src := &SourceConfig{Endpoints: []string{"http://a:1"}, TableKeys: &TableKeys{Prefix: "/shop/t", Count: n, Width: 6}}
	info := etcdInfo(src, &SinkConfig{Kind: SinkFile}, n)
	if err := info.Validate(); err != nil {
		t.Fatal(err)
	}
	info.Normalize()
	val, err := encodeChangefeed(info)
	if err != nil {
		t.Fatal(err)
	}
	if len(val) > 1<<10 {
		t.Fatalf("%d numbered tables encode to %d bytes: %s", n, len(val), val)
	}
	if !strings.Contains(string(val), `"table_keys":{"prefix":"/shop/t","count":100000,"width":6}`) {
		t.Fatalf("stored value does not name the pattern readably: %s", val)
	}
	if r, ok := src.TableRange(42); !ok || r != PrefixRange("/shop/t000042/") {
		t.Fatalf("table 42: %v %v", r, ok)
	}
	for _, id := range []int64{0, n + 1} {
		if _, ok := src.TableRange(id); ok {
			t.Errorf("table %d has a range", id)
		}
	}
	for k, want := range map[string]int64{
		"/shop/t000001/a": 1, "/shop/t100000/": n, "/shop/t000042/x/y": 42,
		"/shop/t000000/a": 0, "/shop/t100001/a": 0, "/shop/t00042/a": 0, "/shop/t0000421/a": 0,
		"/shop/t00004a/a": 0, "/shop/t000042": 0, "/shop/u000042/a": 0,
	} {
		got, ok := src.TableOf(k)
		if ok != (want != 0) || got != want {
			t.Errorf("TableOf(%q) = %d %v, want %d", k, got, ok, want)
		}
		if ok {
			if r, _ := src.TableRange(got); !r.Contains(k) {
				t.Errorf("%q placed in table %d whose range %v does not hold it", k, got, r)
			}
		}
	}
	if strip := src.TableStrip(7); strip != "/shop/t000007/" {
		t.Errorf("TableStrip(7) = %q", strip)
	}
	if d := src.Describe(); !strings.Contains(d, "1-100000") || !strings.Contains(d, "6 digits") {
		t.Errorf("Describe: %s", d)
	}
	var out ChangefeedInfo
	if err := out.UnmarshalJSON([]byte(val)); err != nil {
		t.Fatal(err)
	}
	if out.Source.TableKeys == nil || *out.Source.TableKeys != *src.TableKeys || len(out.Tables) != n {
		t.Fatalf("round trip: %+v, %d tables", out.Source.TableKeys, len(out.Tables))
	}
}

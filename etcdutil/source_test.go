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

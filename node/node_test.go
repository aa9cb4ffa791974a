package node

import (
	"io"
	"strings"
	"testing"

	"github.com/tidemark/tidemark/dispatcher"
)

func noKind(Env) (dispatcher.Factory, io.Closer, error) { return nil, nil, nil }

func baseConfig(t *testing.T) Config {
	return Config{ClusterID: "c", NodeID: "n1", DataDir: t.TempDir(), EtcdEndpoints: []string{"http://127.0.0.1:1"}, Addr: "127.0.0.1:0"}
}

// TestNewChecksKinds: kinds are merged with Config.Dispatchers, and every mistake in them is
// refused with a message naming the kind, before anything connects.
func TestNewChecksKinds(t *testing.T) {
	cases := []struct {
		name   string
		cfg    map[string]Kind
		kinds  map[string]Kind
		errHas string
	}{
		{name: "ok", kinds: map[string]Kind{"counter": noKind}},
		{name: "ok beside config", cfg: map[string]Kind{"a": noKind}, kinds: map[string]Kind{"b": noKind}},
		{name: "twice", cfg: map[string]Kind{"a": noKind}, kinds: map[string]Kind{"a": noKind}, errHas: `"a" is given twice`},
		{name: "nil constructor", kinds: map[string]Kind{"x": nil}, errHas: `kind "x" has no constructor`},
		{name: "bad name", kinds: map[string]Kind{"no/slash": noKind}, errHas: "dispatcher kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.Dispatchers = c.cfg
			srv, err := New(cfg, c.kinds)
			if c.errHas == "" {
				if err != nil || srv == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Fatalf("New: got %v, want an error containing %q", err, c.errHas)
			}
		})
	}
}

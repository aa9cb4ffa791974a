package maintainer

import (
	"strings"
	"testing"
	"time"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
	"github.com/tidemark/tidemark/ts"
)

// TestOwner: a key maps to the one live span of each mode whose range holds it, before and
// after a split (the pieces' tombstoned parent never answers); keys outside every table answer
// nothing.
func TestOwner(t *testing.T) {
	cfg := Config{ClusterID: "c1", Changefeed: "cf", SelfNode: "n1", Epoch: 5,
		ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf", StartTs: ts.FromTime(t0), Redo: true}}
	for id := int64(1); id <= 4; id++ {
		cfg.ChangefeedConfig.Tables = append(cfg.ChangefeedConfig.Tables, heartbeatpb.TableConfig{TableId: id, Load: 100})
	}
	c := newLiveCluster(t, cfg, "n1", "n2", "n3")
	c.run(5 * time.Second)
	if a := c.m.Owner(span.TableStartKey(1)); a.Epoch != 5 || !a.Bootstrapped {
		t.Fatalf("answer %+v: want epoch 5, bootstrapped", a)
	}

	key := append(span.TableStartKey(3), 0xc0) // in the last third of table 3
	owners := c.m.Owner(key).Spans
	if len(owners) != 2 || owners[0].Mode == owners[1].Mode {
		t.Fatalf("owners of %x: %+v; want one per mode", key, owners)
	}
	for _, o := range owners {
		if o.Span != "3" || o.State != "replicating" || o.Node == "" || o.Dispatcher == "" {
			t.Fatalf("owner before split: %+v", o)
		}
	}

	c.m.Admin(AdminRequest{ID: "s1", Kind: admin.Split, Spans: []span.Name{{Table: 3}}, Pieces: 3}, c.now)
	if r := c.liveResult("s1"); r.Outcome != admin.Done {
		t.Fatalf("split: %+v", r)
	}
	c.run(2 * time.Second)
	pieces := c.tableSpans(3, "default")
	for i, k := range [][]byte{span.TableStartKey(3), key, append(span.TableStartKey(4), 0)} {
		owners := c.m.Owner(k).Spans
		if len(owners) != 2 {
			t.Fatalf("key %d %x: owners %+v; want one per mode", i, k, owners)
		}
		for _, o := range owners {
			n, err := span.ParseName(o.Span)
			if err != nil || !span.ContainsKey(n.Span(), k) || o.State != "replicating" {
				t.Fatalf("key %x: owner %+v does not hold it (%v)", k, o, err)
			}
		}
	}
	if got := c.m.Owner(key).Spans[0].Span; got != pieces[2] {
		t.Errorf("owner of %x is %s, want the last piece %s of %v", key, got, pieces[2], pieces)
	}
	for _, k := range [][]byte{span.TableStartKey(5), span.TableStartKey(0), []byte("/registry/x"), nil, []byte("t\x00")} {
		if got := c.m.Owner(k).Spans; len(got) != 0 {
			t.Errorf("key %q is in no table of the changefeed, owners %+v", k, got)
		}
	}
	if !strings.HasPrefix(pieces[2], "3:") {
		t.Fatalf("pieces %v", pieces)
	}
}

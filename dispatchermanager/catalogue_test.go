package dispatchermanager

import (
	"strings"
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// TestBootstrapCatalogue: a bootstrap request's catalogue is checked before the node takes it,
// and a node reads the catalogue when there is one and the per-table list of a maintainer that
// predates catalogues otherwise.
func TestBootstrapCatalogue(t *testing.T) {
	c := &Config{Changefeed: "cf"}
	bad := &heartbeatpb.MaintainerBootstrapRequest{Config: heartbeatpb.ChangefeedConfig{Id: "cf",
		Catalogue: &heartbeatpb.TableCatalogue{Ranges: []heartbeatpb.TableRange{{First: 1, Last: 9}, {First: 5, Last: 20}}}}}
	if err := c.checkBootstrap(bad); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("overlapping catalogue: %v, want refused", err)
	}
	cat := &heartbeatpb.TableCatalogue{Ranges: []heartbeatpb.TableRange{{First: 1, Last: 1_000_000}}, DefaultLoad: 4,
		Loads: []heartbeatpb.TableConfig{{TableId: 77, Load: 900}}}
	good := &heartbeatpb.MaintainerBootstrapRequest{Config: heartbeatpb.ChangefeedConfig{Id: "cf", Catalogue: cat,
		Tables: []heartbeatpb.TableConfig{{TableId: 3}}}}
	if err := c.checkBootstrap(good); err != nil {
		t.Fatal(err)
	}
	got := tablesOf(&good.Config)
	if tb, ok := got.Lookup(77); !ok || tb.Load != 900 {
		t.Errorf("table 77: %+v %v, want load 900 from the catalogue", tb, ok)
	}
	if tb, ok := got.Lookup(999_999); !ok || tb.Load != 4 {
		t.Errorf("table 999999: %+v %v, want the default load", tb, ok)
	}
	legacy := heartbeatpb.ChangefeedConfig{Id: "cf", Tables: []heartbeatpb.TableConfig{{TableId: 3, Load: 8}, {TableId: 5, Load: 1}}}
	old := tablesOf(&legacy)
	if tb, ok := old.Lookup(3); !ok || tb.Load != 8 {
		t.Errorf("legacy table 3: %+v %v", tb, ok)
	}
	if _, ok := old.Lookup(4); ok {
		t.Errorf("legacy: table 4 found, it is not listed")
	}
}

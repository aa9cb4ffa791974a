package maintainer

import (
	"testing"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// TestLargeChangefeedKeepsItsTablesAsCatalogue: above LegacyTablesMax tables the maintainer
// keeps the catalogue alone (compactConfig), and a restore, the bootstrap requests' config and
// a config change read the same tables from it as from the list: every table gets its span, the
// wire carries the same catalogue, and an update adds and removes exactly the tables it changes.
func TestLargeChangefeedKeepsItsTablesAsCatalogue(t *testing.T) {
	// Two ranges (a gap at 50,000) and a few loads of their own, as a sparse catalogue has.
	var tables []heartbeatpb.TableConfig
	for id := int64(1); id <= heartbeatpb.LegacyTablesMax+2; id++ {
		if id == 50_000 {
			continue
		}
		tc := heartbeatpb.TableConfig{TableId: id + 1000*(id/50_000), Load: 10}
		if id%9973 == 0 {
			tc.Load = 700
		}
		tables = append(tables, tc)
	}
	n := len(tables)
	cfg := Config{ClusterID: "c", Changefeed: "cf", SelfNode: "n1", Epoch: 9,
		ChangefeedConfig: &heartbeatpb.ChangefeedConfig{Id: "cf", StartTs: 100, Tables: tables}}
	m, err := New(cfg, []string{"n1", "n2"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	kept := m.cfg.ChangefeedConfig
	if kept.Tables != nil || kept.Catalogue == nil || kept.Catalogue.Count() != n {
		t.Fatalf("kept %d tables one by one and a catalogue of %v; want only a catalogue of %d",
			len(kept.Tables), kept.Catalogue, n)
	}
	if len(cfg.ChangefeedConfig.Tables) != n {
		t.Fatalf("New changed the caller's config: %d tables left of %d", len(cfg.ChangefeedConfig.Tables), n)
	}
	want := heartbeatpb.CompactTables(tables)
	rd := m.Ready()
	m.Advance()
	asked := 0
	for _, env := range rd.Messages {
		req := env.GetBootstrapRequest()
		if req == nil {
			continue
		}
		asked++
		got := req.Config.Catalogue
		if got == nil || !got.Equal(&want) || len(req.Config.Tables) != 0 {
			t.Fatalf("bootstrap request to %s: catalogue %v with %d tables listed; want %v and none listed",
				env.To, got, len(req.Config.Tables), want)
		}
		resp := &heartbeatpb.Envelope{ClusterId: "c", Changefeed: "cf", From: env.To, To: "n1", Epoch: 9,
			Incarnation: 1, Seq: 1, Body: &heartbeatpb.Envelope_BootstrapResponse{
				BootstrapResponse: &heartbeatpb.MaintainerBootstrapResponse{RequestId: req.RequestId}}}
		if err := m.Step(resp, t0); err != nil {
			t.Fatal(err)
		}
	}
	if asked != 2 || !m.Bootstrapped() {
		t.Fatalf("asked %d nodes, bootstrapped %v; want 2 and true", asked, m.Bootstrapped())
	}
	if got := m.db.byTable.len(); got != n {
		t.Fatalf("restore made spans for %d tables, want %d", got, n)
	}
	for _, tc := range []int64{1, 49_999, 51_001, tables[n-1].TableId} {
		if _, ok := m.db.live(span.TableSpan(tc), heartbeatpb.ModeDefault); !ok {
			t.Fatalf("table %d has no span after the restore", tc)
		}
	}
	if _, ok := m.db.live(span.TableSpan(50_000), heartbeatpb.ModeDefault); ok {
		t.Fatal("table 50000 is not in the changefeed but has a span")
	}

	// An update drops table 7 and adds 50,000: exactly those change.
	next := heartbeatpb.ChangefeedConfig{Id: "cf", StartTs: 100}
	for _, tc := range tables {
		if tc.TableId != 7 {
			next.Tables = append(next.Tables, tc)
		}
	}
	next.Tables = append(next.Tables, heartbeatpb.TableConfig{TableId: 50_000})
	if err := m.UpdateConfig(&next, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.db.live(span.TableSpan(50_000), heartbeatpb.ModeDefault); !ok {
		t.Fatal("table 50000 was added but has no span")
	}
	if got := m.cfg.ChangefeedConfig; got.Tables != nil || got.Catalogue.Count() != n || got.Catalogue.Contains(7) {
		t.Fatalf("after the update the maintainer keeps %d tables listed and a catalogue of %d (7 in it: %v); want none, %d, false",
			len(got.Tables), got.Catalogue.Count(), got.Catalogue.Contains(7), n)
	}
	if m.tables.gone[7] != true {
		t.Fatal("table 7 was removed but is not leaving")
	}
	for _, tc := range []int64{1, 49_999, 51_001} {
		if m.tables.gone[tc] {
			t.Fatalf("table %d was kept but is leaving", tc)
		}
	}
}

// TestSmallChangefeedKeepsItsList: at LegacyTablesMax tables or fewer the list stays (older
// nodes read it from bootstrap requests), as the maintainer's own copy.
func TestSmallChangefeedKeepsItsList(t *testing.T) {
	tables := []heartbeatpb.TableConfig{{TableId: 1}, {TableId: 2, Load: 5}, {TableId: 9}}
	in := &heartbeatpb.ChangefeedConfig{Id: "cf", Tables: tables}
	got := compactConfig(in)
	if len(got.Tables) != 3 || got.Catalogue != nil {
		t.Fatalf("kept %v and catalogue %v; want the list and no catalogue", got.Tables, got.Catalogue)
	}
	got.Tables[0].TableId = 42
	if tables[0].TableId != 1 {
		t.Fatal("the copy shares the caller's list")
	}
}

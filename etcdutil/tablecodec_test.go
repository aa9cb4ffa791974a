package etcdutil

import (
	"github.com/tidemark/tidemark/heartbeatpb"

	"encoding/json"
	"strings"
	"testing"
)

func tablesOf(ids ...int64) []TableInfo {
	out := make([]TableInfo, len(ids))
	for i, id := range ids {
		out[i] = TableInfo{ID: id}
	}
	return out
}

func TestChangefeedTablesStoredAsRanges(t *testing.T) {
	info := ChangefeedInfo{ID: "cf", Tables: tablesOf(1, 2, 3, 7, 9, 10)}
	for i := range info.Tables {
		info.Tables[i].Load = 100
	}
	info.Tables[3].Load = 5000
	info.Tables[4].Load = 0
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"tables":["1-3","7","9-10"]`) || !strings.Contains(string(b), `"default_table_load":100,"table_loads":{"7":5000,"9":0}`) {
		t.Fatalf("stored form = %s", b)
	}
	var back ChangefeedInfo
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Tables) != 6 || back.Tables[3] != (TableInfo{ID: 7, Load: 5000}) || back.Tables[4] != (TableInfo{ID: 9}) ||
		back.Tables[5] != (TableInfo{ID: 10, Load: 100}) {
		t.Fatalf("round trip = %+v", back.Tables)
	}
}

// Definitions written before the compact form (one object per table) are still read.
func TestChangefeedLegacyTablesRead(t *testing.T) {
	var info ChangefeedInfo
	err := json.Unmarshal([]byte(`{"id":"cf","start_ts":5,"tables":[{"id":4,"load":9},{"id":8}],"state":"normal"}`), &info)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Tables) != 2 || info.Tables[0] != (TableInfo{ID: 4, Load: 9}) || info.StartTs != 5 {
		t.Fatalf("legacy decode = %+v", info)
	}
}

func TestChangefeedBadStoredTablesRefused(t *testing.T) {
	for name, js := range map[string]string{
		"overlap":        `{"id":"cf","tables":["1-5","5-9"]}`,
		"unordered":      `{"id":"cf","tables":["10","2"]}`,
		"reversed":       `{"id":"cf","tables":["9-1"]}`,
		"negative":       `{"id":"cf","tables":["-3"]}`,
		"garbage":        `{"id":"cf","tables":["x"]}`,
		"load unknown":   `{"id":"cf","tables":["1-3"],"table_loads":{"4":1}}`,
		"load bad id":    `{"id":"cf","tables":["1-3"],"table_loads":{"a":1}}`,
		"too many":       `{"id":"cf","tables":["0-1000000"]}`,
		"not a list":     `{"id":"cf","tables":7}`,
		"loads + legacy": `{"id":"cf","tables":[{"id":1}],"table_loads":{"1":1}}`,
	} {
		var info ChangefeedInfo
		if err := json.Unmarshal([]byte(js), &info); err == nil {
			t.Errorf("%s: %s decoded without error: %+v", name, js, info.Tables)
		}
	}
}

// A million contiguous tables stay a small etcd value; a million scattered ones are refused
// with a message that says why.
func TestChangefeedInfoSize(t *testing.T) {
	big := ChangefeedInfo{ID: "big", Tables: make([]TableInfo, MaxTables)}
	for i := range big.Tables {
		big.Tables[i].ID = int64(i + 1)
	}
	big.Normalize()
	val, err := encodeChangefeed(big)
	if err != nil {
		t.Fatal(err)
	}
	if len(val) > 64<<10 {
		t.Fatalf("1M contiguous tables encode to %d bytes", len(val))
	}
	scattered := ChangefeedInfo{ID: "scattered", Tables: make([]TableInfo, 200_000)}
	for i := range scattered.Tables {
		scattered.Tables[i].ID = int64(2 * i)
	}
	_, err = encodeChangefeed(scattered)
	if err == nil || !strings.Contains(err.Error(), "separate ID ranges") {
		t.Fatalf("scattered tables: err = %v", err)
	}
	if err := (&ChangefeedInfo{ID: "x", Tables: make([]TableInfo, MaxTables+1)}).Validate(); err == nil {
		t.Fatal("more than MaxTables validated")
	}
}

// TestLargestDefinitionRequest: the largest definition etcd may hold (scattered tables, one
// range each, up to MaxChangefeedInfoBytes) still makes a bootstrap request under 4 MiB, so the
// catalogue's wire size is bounded by the etcd value bound.
func TestLargestDefinitionRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes definitions of up to 80,000 scattered tables")
	}
	build := func(n int) ChangefeedInfo {
		info := ChangefeedInfo{ID: "scattered", Tables: make([]TableInfo, n)}
		for i := range info.Tables {
			info.Tables[i] = TableInfo{ID: int64(1_000_000 + 2*i), Load: uint64(i % 3)}
		}
		info.Normalize()
		return info
	}
	// A scattered table of a 7-digit ID takes at least 10 bytes of the value ("1000002",),
	// so 80,000 never fit in 512 KiB.
	lo, hi := 1, 80_000 // encodes at lo, not at hi
	if _, err := encodeChangefeed(build(hi)); err == nil {
		t.Fatalf("%d scattered tables fit the value bound", hi)
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if _, err := encodeChangefeed(build(mid)); err == nil {
			lo = mid
		} else {
			hi = mid
		}
	}
	info := build(lo)
	cfg := info.Config()
	cat := heartbeatpb.CompactTables(cfg.Tables)
	env := heartbeatpb.Envelope{ClusterId: "c", Changefeed: "scattered", Body: &heartbeatpb.Envelope_BootstrapRequest{
		BootstrapRequest: &heartbeatpb.MaintainerBootstrapRequest{Config: heartbeatpb.WireConfig(cfg, &cat), RequestId: 1}}}
	t.Logf("%d scattered tables (%d ranges, %d own loads): request of %d bytes", len(info.Tables), len(cat.Ranges), len(cat.Loads), env.Size())
	if env.Size() > 4<<20 {
		t.Fatalf("request of %d bytes for the largest storable definition: over 4 MiB", env.Size())
	}
}

package etcdutil

import (
	"strings"
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
)

func TestValidateID(t *testing.T) {
	good := []string{"a", "cf-1", "node_2.x", "A9", strings.Repeat("x", 128)}
	for _, id := range good {
		if err := ValidateID("node", id); err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", id, err)
		}
	}
	bad := []string{"", "-a", ".a", "a/b", "a b", "ä", strings.Repeat("x", 129), "a\n"}
	for _, id := range bad {
		err := ValidateID("node", id)
		if err == nil {
			t.Errorf("ValidateID(%q) = nil, want error", id)
			continue
		}
		if !strings.HasPrefix(err.Error(), "etcdutil: ") || !strings.Contains(err.Error(), "node id") {
			t.Errorf("ValidateID(%q) error %q lacks prefix or kind", id, err)
		}
	}
}

func TestKeysLayout(t *testing.T) {
	k := Keys{Cluster: "c1"}
	cases := map[string]string{
		k.Root():                  "/tidemark/c1/",
		k.Node("n1"):              "/tidemark/c1/nodes/n1",
		k.NodesPrefix():           "/tidemark/c1/nodes/",
		k.ChangefeedInfo("cf"):    "/tidemark/c1/changefeeds/cf/info",
		k.ChangefeedStatus("cf"):  "/tidemark/c1/changefeeds/cf/status",
		k.Checkpoint("cf"):        "/tidemark/c1/changefeeds/cf/checkpoint",
		k.ChangefeedsPrefix():     "/tidemark/c1/changefeeds/",
		k.ElectionPrefix("cf"):    "/tidemark/c1/election/cf",
		k.AdminRequest("r1"):      "/tidemark/c1/admin/requests/r1",
		k.AdminResult("r1"):       "/tidemark/c1/admin/results/r1",
		k.electionKeys("cf"):      "/tidemark/c1/election/cf/",
		Keys{Cluster: "x"}.Root(): "/tidemark/x/",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
	if err := (Keys{Cluster: "bad/cluster"}).Validate(); err == nil || !strings.Contains(err.Error(), "cluster id") {
		t.Errorf("Validate of bad cluster = %v, want a cluster id error", err)
	}
}

func validInfo() ChangefeedInfo {
	return ChangefeedInfo{ID: "cf1", StartTs: 100, Tables: []TableInfo{{ID: 1, Load: 10}, {ID: 2}}}
}

func TestChangefeedInfoNormalize(t *testing.T) {
	info := validInfo()
	info.Normalize()
	if info.SplitPieces != 2 || info.State != StateNormal {
		t.Fatalf("Normalize gave split_pieces=%d state=%q, want 2 and normal", info.SplitPieces, info.State)
	}
	info = validInfo()
	info.SplitPieces, info.State = 4, StatePaused
	info.Normalize()
	if info.SplitPieces != 4 || info.State != StatePaused {
		t.Fatalf("Normalize overwrote set fields: %+v", info)
	}
}

func TestChangefeedInfoValidate(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*ChangefeedInfo)
		field string // must appear in the error; "" means valid
	}{
		{"valid", func(*ChangefeedInfo) {}, ""},
		{"valid split", func(c *ChangefeedInfo) { c.SplitLoadThreshold, c.MergeLoadThreshold = 100, 10 }, ""},
		{"bad id", func(c *ChangefeedInfo) { c.ID = "a/b" }, "field id"},
		{"empty id", func(c *ChangefeedInfo) { c.ID = "" }, "field id"},
		{"no tables", func(c *ChangefeedInfo) { c.Tables = nil }, "field tables"},
		{"negative table", func(c *ChangefeedInfo) { c.Tables[1].ID = -1 }, "tables[1].id"},
		{"duplicate table", func(c *ChangefeedInfo) { c.Tables[1].ID = 1 }, "tables[1].id: duplicate"},
		{"split pieces", func(c *ChangefeedInfo) { c.SplitLoadThreshold, c.SplitPieces = 100, 1 }, "split_pieces"},
		{"merge >= split", func(c *ChangefeedInfo) { c.SplitLoadThreshold, c.MergeLoadThreshold = 100, 100 }, "merge_load_threshold"},
		{"unknown state", func(c *ChangefeedInfo) { c.State = "running" }, "field state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			info := validInfo()
			info.Normalize()
			tc.edit(&info)
			err := info.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want an error naming %q", tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) || !strings.HasPrefix(err.Error(), "etcdutil: ") {
				t.Fatalf("Validate = %q, want it to name %q", err, tc.field)
			}
		})
	}
}

func TestChangefeedInfoConfig(t *testing.T) {
	info := validInfo()
	info.Redo, info.SplitLoadThreshold, info.MergeLoadThreshold = true, 100, 10
	info.Normalize()
	got := info.Config()
	want := &heartbeatpb.ChangefeedConfig{
		Id: "cf1", StartTs: 100, Redo: true, SplitLoadThreshold: 100, MergeLoadThreshold: 10, SplitPieces: 2,
		Tables: []heartbeatpb.TableConfig{{TableId: 1, Load: 10}, {TableId: 2}},
	}
	if !got.Equal(want) {
		t.Fatalf("Config() = %v, want %v", got, want)
	}
}

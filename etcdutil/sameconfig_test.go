package etcdutil

import (
	"testing"
	"time"
)

// SameConfig agrees with comparing the Configs themselves, field by field: every field Config
// reads makes a difference, and the others (state, creation time, dispatcher kind, source and
// sink, which a running maintainer does not take from its config) do not.
func TestSameConfigMatchesConfig(t *testing.T) {
	base := func() ChangefeedInfo {
		return ChangefeedInfo{ID: "cf", StartTs: 10, Tables: []TableInfo{{ID: 1, Load: 5}, {ID: 2}}, Redo: true,
			SplitLoadThreshold: 100, MergeLoadThreshold: 10, SplitPieces: 3, MakeBeforeBreak: true,
			State: StateNormal, CreatedAt: time.Unix(1, 0)}
	}
	for name, change := range map[string]func(*ChangefeedInfo){
		"id":          func(c *ChangefeedInfo) { c.ID = "other" },
		"start ts":    func(c *ChangefeedInfo) { c.StartTs++ },
		"table added": func(c *ChangefeedInfo) { c.Tables = append(c.Tables, TableInfo{ID: 3}) },
		"table load":  func(c *ChangefeedInfo) { c.Tables[1].Load = 7 },
		"redo":        func(c *ChangefeedInfo) { c.Redo = false },
		"split":       func(c *ChangefeedInfo) { c.SplitLoadThreshold++ },
		"merge":       func(c *ChangefeedInfo) { c.MergeLoadThreshold++ },
		"pieces":      func(c *ChangefeedInfo) { c.SplitPieces++ },
		"mbb":         func(c *ChangefeedInfo) { c.MakeBeforeBreak = false },
		"state":       func(c *ChangefeedInfo) { c.State = StatePaused },
		"created":     func(c *ChangefeedInfo) { c.CreatedAt = time.Unix(2, 0) },
		"dispatcher":  func(c *ChangefeedInfo) { c.Dispatcher = "etcd" },
		"unchanged":   func(*ChangefeedInfo) {},
	} {
		a, b := base(), base()
		change(&b)
		if got, want := a.SameConfig(&b), a.Config().Equal(b.Config()); got != want {
			t.Errorf("%s: SameConfig %v, the configs are equal: %v", name, got, want)
		}
	}
}

package failover

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// TestHistoryCheckCatchesRegressions shows the etcd side of the checker is not vacuous: a
// checkpoint that goes back, or a write by an older epoch after a newer one, is reported.
func TestHistoryCheckCatchesRegressions(t *testing.T) {
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	ctx := context.Background()
	k := etcdutil.Keys{Cluster: "check"}
	put := func(key, val string) {
		t.Helper()
		if _, err := cli.Put(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		cf   string
		cps  []string
		want string
	}{
		{"ok", []string{`{"checkpoint_ts":5,"epoch":1}`, `{"checkpoint_ts":5,"epoch":2}`, `{"checkpoint_ts":9,"epoch":2}`}, ""},
		{"back", []string{`{"checkpoint_ts":5,"epoch":1}`, `{"checkpoint_ts":4,"epoch":1}`}, "I3: checkpoint went back"},
		{"stale", []string{`{"checkpoint_ts":5,"epoch":3}`, `{"checkpoint_ts":6,"epoch":2}`}, "I5: checkpoint written by epoch 2"},
	} {
		for _, v := range tc.cps {
			put(k.Checkpoint(tc.cf), v)
			put("unrelated", v) // history must follow the key, not the revision
		}
		n, err := checkEtcdHistory(ctx, cli, k, tc.cf)
		switch {
		case tc.want == "" && (err != nil || n != len(tc.cps)):
			t.Errorf("%s: %d versions, %v; want %d, nil", tc.cf, n, err, len(tc.cps))
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v; want an error containing %q", tc.cf, err, tc.want)
		}
	}
	put(k.ChangefeedStatus("st"), `{"maintainer":"n1","epoch":3,"checkpoint_ts":9}`)
	put(k.ChangefeedStatus("st"), `{"maintainer":"n2","epoch":4,"checkpoint_ts":7}`)
	if _, err := checkEtcdHistory(ctx, cli, k, "st"); err == nil || !strings.Contains(err.Error(), "status checkpoint went back from 9") {
		t.Errorf("status regression: %v; want an I3 error", err)
	}
	put(k.ChangefeedStatus("st2"), `{"maintainer":"n2","epoch":4,"checkpoint_ts":7}`)
	put(k.ChangefeedStatus("st2"), `{"maintainer":"n1","epoch":3,"checkpoint_ts":9}`)
	if _, err := checkEtcdHistory(ctx, cli, k, "st2"); err == nil || !strings.Contains(err.Error(), "I5: status published by n1 epoch 3") {
		t.Errorf("stale status writer: %v", err)
	}
}

func TestOpSamplerSeesOverlappingOperators(t *testing.T) {
	s := &opSampler{cf: "cf", stop: make(chan struct{})}
	var st nodeOps
	raw := `{"changefeeds":[{"id":"cf","maintainer":{"epoch":7,"operators":[
		{"kind":"split","mode":"default","spans":["5[7405,7406)"]},
		{"kind":"move","mode":"redo","spans":["5[7405,740580)"]},
		{"kind":"merge","mode":"default","spans":["5[7406,7407)","5[7407,7408)","5[7406,7408)"]},
		{"kind":"move","mode":"default","spans":["6[7405,740580)"]}]}}]}`
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatal(err)
	}
	s.check("n1", st)
	if _, _, err := s.finish(); err != nil {
		t.Errorf("disjoint operators (other mode, other table, adjacent, one operator's own spans) flagged: %v", err)
	}
	s = &opSampler{cf: "cf", stop: make(chan struct{})}
	st.Changefeeds[0].Maintainer.Operators[1].Mode = "default"
	s.check("n1", st)
	if _, _, err := s.finish(); err == nil || !strings.Contains(err.Error(), "I4: maintainer n1 epoch 7 runs split on default 5[7405,7406) and move on default 5[7405,740580)") {
		t.Errorf("overlapping operators: %v", err)
	}
}

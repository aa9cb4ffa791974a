package failover

import (
	"context"
	"testing"
	"time"

	"github.com/tidemark/tidemark/dispatcher/sinkcheck"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
	"github.com/tidemark/tidemark/ts"
)

// TestKillNodes is the cluster issue's acceptance 3 and 4 with real processes: SIGKILL of a node
// that is not the maintainer re-places its spans within TTL + 3 s; SIGKILL of the maintainer's
// node makes another node maintainer with a larger epoch and every span replicating again; and
// across the whole run no key was owned by two working dispatchers and no ts range was skipped.
func TestKillNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three server processes")
	}
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	const ttl = 2 * time.Second
	c := newCluster(t, etcd.ClientURLs(), cli, ttl)

	const tables = 200
	info := etcdutil.ChangefeedInfo{ID: "kill", StartTs: ts.FromTime(time.Now())}
	for i := 1; i <= tables; i++ {
		info.Tables = append(info.Tables, etcdutil.TableInfo{ID: int64(i), Load: 5})
	}
	if err := etcdutil.CreateChangefeed(context.Background(), cli, c.keys, info); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		c.start(id)
	}
	allOn := func(n int) func(etcdutil.ChangefeedStatus) bool {
		return func(st etcdutil.ChangefeedStatus) bool {
			busy := 0
			for _, cnt := range st.NodeSpans {
				if cnt > 0 {
					busy++
				}
			}
			return st.Spans["replicating"] == tables && st.Operators == 0 && busy == n
		}
	}
	st, took := c.waitFor("kill", 30*time.Second, "all spans replicating on 3 nodes", allOn(3))
	t.Logf("placed %d spans on 3 nodes in %v; maintainer %s epoch %d", tables, took, st.Maintainer, st.Epoch)
	firstEpoch, maint := st.Epoch, st.Maintainer

	var victim string
	for _, id := range []string{"n1", "n2", "n3"} {
		if id != maint {
			victim = id
			break
		}
	}
	c.kill(victim)
	st, took = c.waitFor("kill", ttl+3*time.Second, "spans re-placed after SIGKILL of "+victim,
		func(st etcdutil.ChangefeedStatus) bool { return allOn(2)(st) && st.NodeSpans[victim] == 0 })
	t.Logf("SIGKILL %s (not maintainer): all %d spans replicating on the other two after %v (TTL %v)", victim, tables, took, ttl)
	if st.Epoch != firstEpoch {
		t.Errorf("maintainer epoch changed from %d to %d though the maintainer's node lived", firstEpoch, st.Epoch)
	}

	c.kill(maint)
	st, took = c.waitFor("kill", 30*time.Second, "new maintainer after SIGKILL of "+maint,
		func(st etcdutil.ChangefeedStatus) bool {
			return st.Epoch > firstEpoch && st.Maintainer != maint && allOn(1)(st)
		})
	t.Logf("SIGKILL %s (maintainer): %s maintains with epoch %d > %d, all spans replicating after %v",
		maint, st.Maintainer, st.Epoch, firstEpoch, took)

	// Let the survivor process a little more, then stop it and check the whole run.
	before := st.CheckpointTs
	c.waitFor("kill", 10*time.Second, "checkpoint advancing", func(s etcdutil.ChangefeedStatus) bool { return s.CheckpointTs > before })
	c.stopAll()
	records := c.records("kill")
	tableIDs := make([]int64, 0, tables)
	for _, tb := range info.Tables {
		tableIDs = append(tableIDs, tb.ID)
	}
	report, err := sinkcheck.Check(records, info.StartTs, tableIDs...)
	if err != nil {
		t.Fatalf("sink records: %v", err)
	}
	if err := report.Err(); err != nil {
		t.Fatalf("invariants violated over %d records: %v", len(records), err)
	}
	t.Logf("sink check: %d records over %d spans, no gap and no double ownership up to ts %d",
		report.Records, report.Spans, report.Bound)
}

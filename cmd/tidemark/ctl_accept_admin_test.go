package main

// The admin parts of TestCtlAcceptance: move, split and merge, drain and resign.

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/span"
)

// loads returns the nodes by span count, most loaded first.
func loads(sj spansJSON) []string {
	count := map[string]int{}
	for _, s := range sj.Spans {
		count[s.Node]++
	}
	nodes := []string{"n1", "n2", "n3"}
	sort.SliceStable(nodes, func(i, j int) bool { return count[nodes[i]] > count[nodes[j]] })
	return nodes
}

func checkMove(t *testing.T, c *acceptCluster) {
	all := c.spans()
	// From the node with 4 spans to one with 3: the result is still balanced, so the balance
	// scheduler leaves it be and the check below is not racing it.
	order := loads(all)
	from, to := order[0], order[2]
	var name string
	for _, s := range all.Spans {
		if s.Node == from {
			name = s.Span
		}
	}
	res := c.ctl(exitOK, "move", name, "--to", to)
	if !strings.Contains(res.stdout, fmt.Sprintf("done: moved span %s from %s to %s", name, from, to)) {
		t.Fatalf("move: %s", res.stdout)
	}
	if got := spanNode(c.spans(), name); got != to {
		t.Fatalf("span %s on %s after moving it to %s", name, got, to)
	}
	var again adminJSON
	c.ctlJSON(&again, "move", name, "--to", to)
	if again.Outcome != "done" || !strings.Contains(again.Message, "already on node") {
		t.Errorf("move --json again: %+v", again)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"move", "99", "--to", to}, "unknown span 99"},
		{[]string{"move", name, "--to", "ghost"}, "node ghost is not alive"},
	} {
		res = c.ctl(exitError, bad.args...)
		if !strings.Contains(res.stderr, bad.want) {
			t.Errorf("%v: stderr %q, want %q", bad.args, res.stderr, bad.want)
		}
	}
	c.ctl(exitUsage, "move", name)
	c.ctl(exitUsage, "move", "x:zz", "--to", to)
	// Two moves of one span in one etcd transaction: the maintainer sees both in one snapshot,
	// starts the first and refuses the second as busy.
	busyOther := from
	reqs := []etcdutil.AdminRequest{
		{ID: "busy-1", Changefeed: "demo", Kind: admin.Move, Spans: []string{name}, Node: busyOther},
		{ID: "busy-2", Changefeed: "demo", Kind: admin.Move, Spans: []string{name}, Node: order[1]},
	}
	keys := etcdutil.Keys{Cluster: "ctltest"}
	var puts []clientv3.Op
	for _, r := range reqs {
		b, _ := json.Marshal(r)
		puts = append(puts, clientv3.OpPut(keys.AdminRequest(r.ID), string(b)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.cli.Txn(ctx).Then(puts...).Commit(); err != nil {
		t.Fatal(err)
	}
	r1, err1 := etcdutil.WaitAdminResult(ctx, c.cli, keys, "busy-1")
	r2, err2 := etcdutil.WaitAdminResult(ctx, c.cli, keys, "busy-2")
	if err1 != nil || err2 != nil || r1.Outcome != "done" || r2.Outcome != "refused" ||
		!strings.Contains(r2.Message, "has an operator in flight") {
		t.Fatalf("concurrent moves: %+v %v / %+v %v", r1, err1, r2, err2)
	}
	c.settled(10)
}

func checkSplitMerge(t *testing.T, c *acceptCluster) {
	res := c.ctl(exitOK, "split", "5", "--pieces", "3")
	if !strings.Contains(res.stdout, "done: split span 5 into 3 spans") {
		t.Fatalf("split: %s", res.stdout)
	}
	pieces := c.spans("--table", "5")
	if pieces.Matched != 3 {
		t.Fatalf("table 5 after split: %+v", pieces)
	}
	names := make([]string, 0, 3)
	for _, s := range pieces.Spans {
		names = append(names, s.Span)
	}
	sort.Slice(names, func(i, j int) bool {
		a, _ := span.ParseName(names[i])
		b, _ := span.ParseName(names[j])
		return string(a.Start) < string(b.Start)
	})
	c.settled(12)
	var refused adminJSON
	res = c.ctl(exitError, "--json", "merge", names[0], names[2])
	if err := json.Unmarshal([]byte(res.stdout), &refused); err != nil || refused.Outcome != "refused" ||
		!strings.Contains(refused.Message, "spans not adjacent") || !strings.Contains(res.stderr, "spans not adjacent") {
		t.Fatalf("merge of non-adjacent spans: %+v %v\n%s", refused, err, res.stderr)
	}
	if got := c.spans("--table", "5"); got.Matched != 3 {
		t.Fatalf("refused merge changed table 5: %+v", got)
	}
	res = c.ctl(exitOK, "merge", names[0], names[1])
	if !strings.Contains(res.stdout, "done: merged") {
		t.Fatalf("merge: %s", res.stdout)
	}
	if got := c.spans("--table", "5"); got.Matched != 2 {
		t.Fatalf("table 5 after merge: %+v", got)
	}
	c.settled(11)
}

func checkDrain(t *testing.T, c *acceptCluster) {
	st := c.settled(11)
	victim := "n1"
	if demoStatus(t, st).Maintainer.Node == victim {
		victim = "n2" // any node works; keep the maintainer serving spans for variety
	}
	res := c.ctl(exitOK, "drain", victim)
	if !strings.Contains(res.stdout, "node "+victim+" holds no spans of demo") {
		t.Fatalf("drain: %s", res.stdout)
	}
	if got := c.spans("--node", victim); got.Matched != 0 {
		t.Fatalf("drained node still holds %+v", got)
	}
	var nodes []nodeJSON
	c.ctlJSON(&nodes, "nodes")
	for _, n := range nodes {
		if n.ID == victim && !n.Drained {
			t.Errorf("nodes --json does not show %s drained: %+v", victim, n)
		}
	}
	res = c.ctl(exitError, "move", "1", "--to", victim)
	if !strings.Contains(res.stderr, "is drained") {
		t.Errorf("move onto drained node: %s", res.stderr)
	}
	var undrained map[string]any
	c.ctlJSON(&undrained, "drain", victim, "--cancel")
	c.ctl(exitError, "drain", victim, "--cancel")
	var drainOut map[string]any
	c.ctlJSON(&drainOut, "drain", victim)
	if drainOut["drained"] != true {
		t.Errorf("drain --json: %v", drainOut)
	}
	c.ctl(exitOK, "drain", victim, "--cancel")
	c.ctl(exitError, "drain", "ghost")
	c.waitFor("undrained node gets spans again", 30*time.Second, func() bool { return c.spans("--node", victim).Matched > 0 })
}

func checkResign(t *testing.T, c *acceptCluster) {
	st := c.settled(11)
	old := demoStatus(t, st).Maintainer
	var out resignJSON
	c.ctlJSON(&out, "resign", "demo")
	if out.Outcome != "done" || out.NewMaintainer == old.Node || out.NewEpoch <= old.Epoch {
		t.Fatalf("resign --json: %+v (old %+v)", out, old)
	}
	// Maintaining: the new maintainer has bootstrapped and published its status.
	keys := etcdutil.Keys{Cluster: "ctltest"}
	var took time.Duration
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		pub, err := etcdutil.GetStatus(ctx, c.cli, keys, "demo")
		cancel()
		took = time.Since(mustParseFinished(t, c, out))
		if err == nil && pub.Epoch == out.NewEpoch && pub.Bootstrapped {
			break
		}
		if took > 5*time.Second {
			t.Fatalf("new maintainer %s not bootstrapped after %v: %+v", out.NewMaintainer, took, pub)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("resign: elected after %.1fms, bootstrapped and published within %v", out.HandoverMs, took)
	if out.HandoverMs > 1000 || took > time.Second {
		t.Errorf("hand-over took %.1fms to elect and %v to maintain, want both within 1s", out.HandoverMs, took)
	}
	res := c.ctl(exitOK, "resign", "demo")
	if !strings.Contains(res.stdout, "handed over from") {
		t.Errorf("resign: %s", res.stdout)
	}
	c.ctl(exitError, "resign", "nope")
	c.settled(11)
}

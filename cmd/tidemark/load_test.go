package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// TestLoadWritesTheSequence: one writer applies the seeded sequence in order, so etcd must hold
// exactly the state a replay of that sequence gives (read with the etcd client, and with
// etcdctl when installed); progress lines appear and the summary counts every event.
func TestLoadWritesTheSequence(t *testing.T) {
	srv := embedetcd.StartForTest(t)
	ep := srv.ClientURLs()[0]
	cli := srv.Client(t)
	lf := loadFlags{prefix: "/load/", keys: 25, events: 400, deleteRatio: 0.3, seed: 7}
	before, err := cli.Get(context.Background(), "/")
	if err != nil {
		t.Fatal(err)
	}
	res := mustRun(t, exitOK, "load", "--etcd", ep, "--prefix", lf.prefix, "--keys", "25", "--events", "400",
		"--delete-ratio", "0.3", "--seed", "7", "--workers", "1", "--rate", "2000", "--progress", "20ms")

	// The replay: the final state, and the history etcd must have (a delete of a missing key
	// writes no revision).
	want := map[string]string{}
	var history []string
	puts, deletes := 0, 0
	next := loadSequence(lf)
	for range lf.events {
		ev := next()
		if ev.delete {
			if _, ok := want[ev.key]; ok {
				history = append(history, "DELETE "+ev.key)
			}
			delete(want, ev.key)
			deletes++
		} else {
			want[ev.key] = fmt.Sprintf("v%d", ev.seq)
			history = append(history, "PUT "+ev.key+"="+want[ev.key])
			puts++
		}
	}
	if got := watchHistory(t, cli, lf.prefix, before.Header.Revision+1, len(history)); strings.Join(got, "\n") != strings.Join(history, "\n") {
		t.Errorf("history under %s differs from the replay of the sequence:\ngot  %d events\nwant %d events", lf.prefix, len(got), len(history))
		for i := range min(len(got), len(history)) {
			if got[i] != history[i] {
				t.Fatalf("first difference at event %d: got %q, want %q", i, got[i], history[i])
			}
		}
	}
	summary := fmt.Sprintf("wrote 400 of 400 events (%d puts, %d deletes) over 25 keys under /load/ in ", puts, deletes)
	if !strings.Contains(res.stdout, summary) || !strings.HasSuffix(strings.TrimSpace(res.stdout), "; 0 errors") {
		t.Errorf("summary: want %q in\n%s", summary, res.stdout)
	}
	// 400 events at 2000/s take 0.2 s: several 20 ms progress lines, not redrawn (no terminal).
	progress := regexp.MustCompile(`(?m)^\d+/400 events \(\d+%\), \d+ events/s, 0 errors$`)
	if n := len(progress.FindAllString(res.stdout, -1)); n < 2 || strings.Contains(res.stdout, "\r") {
		t.Errorf("want at least 2 progress lines and no carriage returns, got %d in\n%q", n, res.stdout)
	}
	if rate := regexp.MustCompile(`: (\d+) events/s;`).FindStringSubmatch(res.stdout); rate == nil || atoiOr0(rate[1]) > 2400 {
		t.Errorf("--rate 2000 not kept: %q", rate)
	}

	resp, err := cli.Get(context.Background(), lf.prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("etcd holds\n%v\nwant (replay of the sequence)\n%v", got, want)
	}
	if len(want) == 0 || deletes == 0 {
		t.Fatalf("weak case: %d keys left, %d deletes", len(want), deletes)
	}

	if path, err := exec.LookPath("etcdctl"); err == nil {
		out, err := exec.Command(path, "--endpoints", ep, "get", "--prefix", lf.prefix, "--keys-only").Output()
		if err != nil {
			t.Fatalf("etcdctl: %v", err)
		}
		var keys, wantKeys []string
		for _, l := range strings.Fields(string(out)) {
			keys = append(keys, l)
		}
		for k := range want {
			wantKeys = append(wantKeys, k)
		}
		sort.Strings(wantKeys)
		if strings.Join(keys, ",") != strings.Join(wantKeys, ",") {
			t.Errorf("etcdctl get --prefix: %v, want %v", keys, wantKeys)
		}
	} else {
		t.Log("etcdctl not installed; checked with the client only")
	}
}

// TestLoadConcurrent: with many writers the order is etcd's, but every put is one revision in
// the history under the prefix, and nothing is written outside it.
func TestLoadConcurrent(t *testing.T) {
	srv := embedetcd.StartForTest(t)
	ep := srv.ClientURLs()[0]
	cli := srv.Client(t)
	ctx := context.Background()
	before, err := cli.Get(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := mustRun(t, exitOK, "load", "--etcd", ep, "--prefix", "/c/", "--keys", "100", "--events", "3000")
	t.Logf("%s(took %v)", res.stdout, time.Since(start).Round(time.Millisecond))
	m := regexp.MustCompile(`wrote 3000 of 3000 events \((\d+) puts, 0 deletes\)`).FindStringSubmatch(res.stdout)
	if m == nil || m[1] != "3000" {
		t.Fatalf("summary: %s", res.stdout)
	}
	all, err := cli.Get(ctx, "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	if revs := all.Header.Revision - before.Header.Revision; revs != 3000 {
		t.Errorf("%d revisions written, want 3000 (one per put)", revs)
	}
	for _, kv := range all.Kvs {
		if !strings.HasPrefix(string(kv.Key), "/c/") {
			t.Errorf("key %q outside the prefix", kv.Key)
		}
	}
	if len(all.Kvs) != 100 {
		t.Errorf("%d keys, want all 100 hit by 3000 uniform puts", len(all.Kvs))
	}
}

// TestLoadInterruptLosesNoCount: an interrupted load counts as written exactly what etcd
// committed, and nothing it sent lands after it returned (a checker reads the source's revision
// right after the load stops); events it never sent are not errors.
func TestLoadInterruptLosesNoCount(t *testing.T) {
	srv := embedetcd.StartForTest(t)
	cli := srv.Client(t)
	before, err := cli.Get(context.Background(), "health", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		var st loadStats
		lf := loadFlags{prefix: fmt.Sprintf("/i%d/", round), keys: 50, events: 1_000_000, workers: 64, seed: 1, timeout: 5 * time.Second}
		writeLoad(ctx, cli, lf, &st)
		cancel()
		after, err := cli.Get(context.Background(), "health", clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // room for a late commit to show
		later, err := cli.Get(context.Background(), "health", clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if st.errors.Load() != 0 || st.done() == 0 {
			t.Errorf("round %d: %d written, %d errors; want some written and no error", round, st.done(), st.errors.Load())
		}
		if got := after.Header.Revision - before.Header.Revision; got != st.done() {
			t.Errorf("round %d: %d revisions in etcd when the load returned, %d counted written", round, got, st.done())
		}
		if later.Header.Revision != after.Header.Revision {
			t.Errorf("round %d: %d writes landed after the load returned", round, later.Header.Revision-after.Header.Revision)
		}
		before = later
	}
}

// TestLoadBadFlags: each mistake is a usage error (exit 2) naming the flag, before connecting.
func TestLoadBadFlags(t *testing.T) {
	ok := []string{"load", "--etcd", "http://127.0.0.1:1", "--prefix", "/p/", "--keys", "3", "--events", "5"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"load", "--keys", "3", "--events", "5"}, "--prefix is required"},
		{append(ok, "--keys", "0"), "--keys 0"},
		{append(ok, "--events", "-1"), "--events -1"},
		{append(ok, "--rate", "-5"), "--rate -5"},
		{append(ok, "--delete-ratio", "1.5"), "--delete-ratio 1.5"},
		{append(ok, "--delete-ratio", "NaN"), "--delete-ratio NaN"},
		{append(ok, "--etcd", "localhost:2379"), "is not an etcd URL"},
		{append(ok, "--prefix", "/tidemark/x/"), "where tidemark keeps its own keys"},
		{append(ok, "--keys", "many"), "invalid argument \"many\""},
		{append(ok, "extra"), "takes no arguments"},
	}
	for _, c := range cases {
		res := mustRun(t, exitUsage, c.args...)
		if !strings.Contains(res.stderr, c.want) {
			t.Errorf("%v: stderr %q, want %q", c.args[1:], res.stderr, c.want)
		}
	}
}

// watchHistory reads n events under prefix from revision rev on.
func watchHistory(t *testing.T, cli *clientv3.Client, prefix string, rev int64, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for resp := range cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev)) {
		if err := resp.Err(); err != nil {
			t.Fatalf("watch: %v", err)
		}
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypeDelete {
				out = append(out, "DELETE "+string(ev.Kv.Key))
			} else {
				out = append(out, "PUT "+string(ev.Kv.Key)+"="+string(ev.Kv.Value))
			}
		}
		if len(out) >= n {
			return out
		}
	}
	t.Fatalf("watch ended after %d of %d events", len(out), n)
	return nil
}

func atoiOr0(s string) int {
	var n int
	_, _ = fmt.Sscan(s, &n)
	return n
}

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
	"github.com/tidemark/tidemark/etcdutil"
)

// TestEtcdMirrorEndToEnd replicates a source prefix into a mirror through three nodes while a
// writer puts and deletes keys, a span moves and the maintainer resigns; then ctl diff finds
// the mirror equal to the source, and the histories of both pass the I8 check. Its moves are
// break-before-make (--make-before-break=false); TestEtcdMirrorMakeBeforeBreak runs the default.
func TestEtcdMirrorEndToEnd(t *testing.T) {
	c := startAcceptCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	created, lastRev := replicateThroughFailovers(t, ctx, c, "--make-before-break=false",
		"--sink", "etcd", "--sink-etcd", c.ep, "--sink-prefix", "/dst/")
	var st statusJSON
	c.ctlJSON(&st, "status")
	if cs := demoStatus(t, st); cs.CompactBelow < uint64(lastRev) || cs.LagRevisions == nil || *cs.LagRevisions < 0 {
		t.Fatalf("status of an etcd changefeed: compact below %d, lag %v; want the checkpoint (>= %d) and a revision lag",
			cs.CompactBelow, cs.LagRevisions, lastRev)
	}
	if out := c.ctl(exitOK, "status").stdout; !strings.Contains(out, "may be compacted below revision") || !strings.Contains(out, " revisions") {
		t.Fatalf("status: %s", out)
	}
	src, dst := checkMirror(t, ctx, c, created, lastRev)
	t.Logf("%d source events, %d mirror events, through source revision %d", len(src), len(dst), lastRev)
	// The diff can fail: a key only in the mirror is found and exits 1.
	res := c.ctl(exitOK, "diff", "demo")
	if _, err := c.cli.Put(ctx, "/dst/intruder", "x"); err != nil {
		t.Fatal(err)
	}
	res = c.ctl(exitError, "diff", "demo")
	if !strings.Contains(res.stdout, "/dst/intruder") || !strings.Contains(res.stdout, "1 differing keys") {
		t.Fatalf("diff after an intruder key: %s", res.stdout)
	}
}

// checkMirror asserts that ctl diff finds the mirror /dst/ equal to the source /src/ and that
// the two histories pass the I8 check; it returns them.
func checkMirror(t *testing.T, ctx context.Context, c *acceptCluster, created, lastRev int64) (src, dst []etcdcdc.Event) {
	t.Helper()
	if res := c.ctl(exitOK, "diff", "demo"); !strings.Contains(res.stdout, "0 differing keys") {
		t.Fatalf("diff: %s", res.stdout)
	}
	end, err := c.cli.Get(ctx, "\x00", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	src = history(t, ctx, c.cli, "/src/", created, lastRev)
	dst = history(t, ctx, c.cli, "/dst/", created, end.Header.Revision)
	err = etcdcdc.CheckHistory(src, dst, func(k []byte) (string, bool) {
		rest, ok := strings.CutPrefix(string(k), "/dst/")
		return "/src/" + rest, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	return src, dst
}

// replicateThroughFailovers creates changefeed demo over /src/ with the given sink flags, splits
// it in three, runs a writer that puts and deletes keys (every value unique) while a span moves
// and the maintainer resigns, and waits until the checkpoint passes the last write. It returns
// the source revision before the changefeed and the last write's.
func replicateThroughFailovers(t *testing.T, ctx context.Context, c *acceptCluster, sink ...string) (created, lastRev int64) {
	resp, err := c.cli.Get(ctx, "\x00", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	created = resp.Header.Revision
	c.ctl(exitOK, append([]string{"changefeed", "create", "demo", "--dispatcher", "etcd", "--source-etcd", c.ep, "--source-prefix", "/src/"}, sink...)...)
	c.settled(1)
	c.ctl(exitOK, "split", "1", "--pieces", "3")
	c.settled(3)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var writeErr error
	wg.Add(1)
	go func() { // the writer: every value unique, a third of the ops deletes
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("/src/%02x-%d", (i*53)%256, i%41)
			var r int64
			if i%3 == 2 {
				resp, err := c.cli.Delete(ctx, k)
				if err != nil {
					writeErr = err
					return
				}
				r = resp.Header.Revision
			} else {
				resp, err := c.cli.Put(ctx, k, fmt.Sprintf("v%d", i))
				if err != nil {
					writeErr = err
					return
				}
				r = resp.Header.Revision
			}
			lastRev = r
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	sp := c.spans().Spans[0]
	to := "n1"
	if sp.Node == to {
		to = "n2"
	}
	c.ctl(exitOK, "move", sp.Span, "--to", to)
	time.Sleep(500 * time.Millisecond)
	c.ctl(exitOK, "resign", "demo")
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	keys := etcdutil.Keys{Cluster: "ctltest"}
	c.waitFor("checkpoint at the last write", 30*time.Second, func() bool {
		cp, err := etcdutil.GetCheckpoint(ctx, c.cli, keys, "demo")
		return err == nil && int64(cp) >= lastRev
	})
	return created, lastRev
}

// history reads every event under prefix in revisions (from, to], as the dispatchers saw them.
func history(t *testing.T, ctx context.Context, cli *clientv3.Client, prefix string, from, to int64) []etcdcdc.Event {
	t.Helper()
	h, err := etcdcdc.ReadHistory(ctx, cli, from, to, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return h[prefix]
}

// TestEtcdFileSinkEndToEnd is the same run into file sinks: every source event is in some
// node's files, each dispatcher wrote each key in revision order, nothing was invented.
func TestEtcdFileSinkEndToEnd(t *testing.T) {
	c := startAcceptCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	created, lastRev := replicateThroughFailovers(t, ctx, c, "--sink", "file")
	var records []etcdcdc.Record
	for _, dir := range c.dirs {
		recs, err := etcdcdc.ReadFileSink(filepath.Join(dir, "cdc"), "demo")
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, recs...)
	}
	src := history(t, ctx, c.cli, "/src/", created, lastRev)
	t.Logf("%d source events, %d records in the nodes' files", len(src), len(records))
	if err := etcdcdc.CheckFileSinks(src, records); err != nil {
		t.Fatal(err)
	}
}

// A changefeed resumed after its source was compacted above its checkpoint shows the spans in
// error, with what to do, in ctl spans and ctl status; its checkpoint does not move.
func TestEtcdCompactedSourceShowsError(t *testing.T) {
	c := startAcceptCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.ctl(exitOK, "changefeed", "create", "demo", "--dispatcher", "etcd", "--source-etcd", c.ep, "--source-prefix", "/src/", "--sink", "file")
	c.settled(1)
	first, err := c.cli.Put(ctx, "/src/a", "1")
	if err != nil {
		t.Fatal(err)
	}
	keys := etcdutil.Keys{Cluster: "ctltest"}
	c.waitFor("checkpoint at the first write", 30*time.Second, func() bool {
		cp, err := etcdutil.GetCheckpoint(ctx, c.cli, keys, "demo")
		return err == nil && int64(cp) >= first.Header.Revision
	})
	c.ctl(exitOK, "changefeed", "pause", "demo")
	cp, err := etcdutil.GetCheckpoint(ctx, c.cli, keys, "demo")
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for i := range 5 {
		resp, err := c.cli.Put(ctx, "/src/b", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		last = resp.Header.Revision
	}
	if _, err := c.cli.Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	c.ctl(exitOK, "changefeed", "resume", "demo")
	var out string
	c.waitFor("the span in error", 30*time.Second, func() bool {
		// Right after the resume the maintainer may still be taking the changefeed over: the
		// API says so (503) and the listing is asked again.
		res := runCLI(t, ctlArgs(c.ep, "spans", "--changefeed", "demo", "--state", "error")...)
		out = res.stdout
		return res.code == exitOK && strings.Contains(out, "compacted")
	})
	if !strings.Contains(out, "remove the changefeed and create it again") {
		t.Fatalf("the error does not say what to do: %s", out)
	}
	if got, err := etcdutil.GetCheckpoint(ctx, c.cli, keys, "demo"); err != nil || got > uint64(last) || got < cp {
		t.Fatalf("checkpoint %d (%v) moved past the compaction at %d (was %d)", got, err, last, cp)
	}
	t.Logf("checkpoint %d, compacted at %d", cp, last)
}

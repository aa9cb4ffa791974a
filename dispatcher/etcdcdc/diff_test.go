package etcdcdc

import (
	"context"
	"testing"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// Diff compares at the given source revision: later source writes are not differences of the
// mirror, missing, extra and different keys are, each once.
func TestDiff(t *testing.T) {
	ctx := context.Background()
	cli := embedetcd.StartForTest(t).Client(t)
	put(t, cli, "/src/a", "1")
	put(t, cli, "/src/b", "2")
	put(t, cli, "/src/c", "3")
	put(t, cli, "/dst/a", "1")
	put(t, cli, "/dst/b", "changed")
	put(t, cli, "/dst/x", "extra")
	at := rev(t, cli)
	put(t, cli, "/src/d", "after the checkpoint")
	cfg := &etcdutil.SourceConfig{Prefix: "/src/"}
	res, err := Diff(ctx, cli, cfg, cli, "/dst/", at)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range res.Diffs {
		got[d.MirrorKey] = d.SourceKey
		if d.MirrorKey == "/dst/c" && (d.InMirror || !d.InSource) || d.MirrorKey == "/dst/x" && (!d.InMirror || d.InSource) {
			t.Errorf("diff %+v", d)
		}
	}
	if len(res.Diffs) != 3 || got["/dst/b"] != "/src/b" || got["/dst/c"] != "/src/c" || got["/dst/x"] != "/src/x" || res.Keys != 3 {
		t.Fatalf("diffs %+v, keys %d", res.Diffs, res.Keys)
	}
	if !res.SourceChangedAfter {
		t.Error("a source write above the revision went unnoticed")
	}
	put(t, cli, "/dst/b", "2")
	put(t, cli, "/dst/c", "3")
	if _, err := cli.Delete(ctx, "/dst/x"); err != nil {
		t.Fatal(err)
	}
	res, err = Diff(ctx, cli, cfg, cli, "/dst/", at)
	if err != nil || len(res.Diffs) != 0 {
		t.Fatalf("after repair: %+v, %v", res, err)
	}
}

// A range removed from a changefeed keeps what it had mirrored: those mirror keys are counted
// apart, not as differences, while an extra key inside a remaining range still is one.
func TestDiffLeavesRemovedRangesOut(t *testing.T) {
	ctx := context.Background()
	cli := embedetcd.StartForTest(t).Client(t)
	put(t, cli, "/src/a1", "1")
	put(t, cli, "/dst//src/a1", "1")
	put(t, cli, "/dst//src/a2", "deleted at the source, not in the mirror") // inside [a, b): a difference
	put(t, cli, "/dst//src/b1", "left by the removed range [b, c)")
	put(t, cli, "/dst//src/b2", "left by the removed range [b, c)")
	cfg := &etcdutil.SourceConfig{Ranges: []etcdutil.KeyRange{{Start: "/src/a", End: "/src/b"}, {Start: "/src/c", End: "/src/d"}}}
	res, err := Diff(ctx, cli, cfg, cli, "/dst/", rev(t, cli))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Diffs) != 1 || res.Diffs[0].MirrorKey != "/dst//src/a2" || res.Diffs[0].InSource {
		t.Errorf("diffs %+v, want only /dst//src/a2 as extra", res.Diffs)
	}
	if res.Outside != 2 || len(res.OutsideSample) != 2 || res.OutsideSample[0] != "/dst//src/b1" {
		t.Errorf("outside %d %v, want the two keys of the removed range", res.Outside, res.OutsideSample)
	}
}

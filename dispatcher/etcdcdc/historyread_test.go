package etcdcdc

import (
	"context"
	"testing"

	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// ReadHistory returns the events of (from, to] under each prefix in revision order, ends even
// when no event under the prefixes is at to, and reads to the present with to 0.
func TestReadHistory(t *testing.T) {
	ctx := context.Background()
	cli := embedetcd.StartForTest(t).Client(t)
	from := rev(t, cli)
	put(t, cli, "/src/a", "1")
	put(t, cli, "/other/x", "not asked for")
	put(t, cli, "/dst/a", "1")
	if _, err := cli.Delete(ctx, "/src/a"); err != nil {
		t.Fatal(err)
	}
	to := rev(t, cli)
	put(t, cli, "/other/y", "after to") // the bound is not an event under the prefixes
	put(t, cli, "/src/b", "after to")
	h, err := ReadHistory(ctx, cli, from, to, "/src/", "/dst/")
	if err != nil {
		t.Fatal(err)
	}
	src, dst := h["/src/"], h["/dst/"]
	if len(src) != 2 || string(src[0].Key) != "/src/a" || src[0].Delete || !src[1].Delete || src[1].Revision != to {
		t.Errorf("source history %+v", src)
	}
	if len(dst) != 1 || string(dst[0].Value) != "1" {
		t.Errorf("mirror history %+v", dst)
	}
	all, err := ReadHistory(ctx, cli, from, 0, "/src/")
	if err != nil || len(all["/src/"]) != 3 || string(all["/src/"][2].Key) != "/src/b" {
		t.Errorf("history to now: %+v, %v", all["/src/"], err)
	}
}

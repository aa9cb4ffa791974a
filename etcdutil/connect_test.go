package etcdutil

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

func TestConnectToDeadEndpointFailsFast(t *testing.T) {
	// A port that was free a moment ago: nothing answers there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	dead := fmt.Sprintf("http://%s", l.Addr())
	l.Close()

	start := time.Now()
	cli, err := Connect(context.Background(), []string{dead}, nil, 300*time.Millisecond)
	if err == nil {
		cli.Close()
		t.Fatal("Connect to a dead endpoint succeeded")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Connect took %v with a 300ms timeout", took)
	}
	want := fmt.Sprintf("etcdutil: cannot reach etcd at [%s]", dead)
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %q, want it to start with %q", err, want)
	}
}

func TestConnectRejectsNoEndpoints(t *testing.T) {
	for _, eps := range [][]string{nil, {""}} {
		if _, err := Connect(context.Background(), eps, nil, time.Second); err == nil || !strings.HasPrefix(err.Error(), "etcdutil: ") {
			t.Errorf("Connect(%q) = %v, want an etcdutil error", eps, err)
		}
	}
}

func TestConnectToLiveEtcd(t *testing.T) {
	srv := embedetcd.StartForTest(t)
	cli, err := Connect(context.Background(), srv.ClientURLs(), nil, 5*time.Second)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	ctx := testCtx(t)
	if err := CreateChangefeed(ctx, cli, testKeys, validInfo()); err != nil {
		t.Fatalf("create through Connect's client: %v", err)
	}
}

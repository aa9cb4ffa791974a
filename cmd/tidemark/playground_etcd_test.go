package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/etcdutil"
)

// The playground with --dispatcher etcd (and no load of its own) mirrors what is written under /demo/src/ of its etcd,
// and ctl diff finds the mirror equal to the source.
func TestPlaygroundEtcdDispatcher(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three server processes")
	}
	base := freeBasePort(t, 7)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", base+6)
	p := startPlayground(t, t.TempDir(), "--nodes", "3", "--dispatcher", "etcd", "--load-rate", "0", "--base-port", strconv.Itoa(base),
		"--etcd-client-url", etcdURL)
	dir := strings.TrimSpace(strings.SplitN(p.waitLine(t, "data and logs:", 30*time.Second), ":", 2)[1])
	p.waitLineOrLogs(t, "spans 1/1 replicating", 60*time.Second, dir)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdURL}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last int64
	for i := range 300 {
		k := fmt.Sprintf("%s%d", demoSourcePrefix, i%40)
		if i%4 == 3 {
			r, err := cli.Delete(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			last = r.Header.Revision
		} else {
			r, err := cli.Put(ctx, k, fmt.Sprint(i))
			if err != nil {
				t.Fatal(err)
			}
			last = r.Header.Revision
		}
	}
	keys := etcdutil.Keys{Cluster: playgroundCluster}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		cp, err := etcdutil.GetCheckpoint(ctx, cli, keys, demoChangefeed)
		if err == nil && int64(cp) >= last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint %d (%v) not at the last write %d", cp, err, last)
		}
	}
	res := mustRun(t, exitOK, "ctl", "--etcd", etcdURL, "diff", "demo")
	if !strings.Contains(res.stdout, "0 differing keys") {
		t.Fatalf("diff: %s", res.stdout)
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	p.waitExit(t, 20*time.Second)
}

// The default playground replicates the embedded etcd under a load of its own: the status line
// shows events replicated per second and the lag, and once the load has written its events the
// mirror catches up to zero differing keys.
func TestPlaygroundDefaultLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three server processes")
	}
	base := freeBasePort(t, 7)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", base+6)
	p := startPlayground(t, t.TempDir(), "--nodes", "3", "--load-rate", "200", "--load-events", "600", "--load-keys", "50",
		"--base-port", strconv.Itoa(base), "--etcd-client-url", etcdURL)
	dir := strings.TrimSpace(strings.SplitN(p.waitLine(t, "data and logs:", 30*time.Second), ":", 2)[1])
	if line := p.waitLine(t, "load: ", 5*time.Second); !strings.Contains(line, "200 events/s over 50 keys under "+demoSourcePrefix) {
		t.Fatalf("load line: %q", line)
	}
	// While the load runs, some second shows events replicated and the lag.
	var busy string
	for deadline := time.Now().Add(20 * time.Second); busy == ""; {
		line := p.waitLine(t, "replicated ", time.Until(deadline))
		if strings.Contains(line, "replicated 0 events/s") || strings.Contains(line, "replicated ? events/s") {
			continue
		}
		busy = line
	}
	if !strings.Contains(busy, "events/s | lag ") || !strings.Contains(busy, "revisions, ") {
		t.Fatalf("status line without events/s and lag: %q", busy)
	}
	p.waitLineOrLogs(t, "load done: 600 events written", 30*time.Second, dir)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdURL}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := cli.Get(ctx, "\x00", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	keys := etcdutil.Keys{Cluster: playgroundCluster}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		cp, err := etcdutil.GetCheckpoint(ctx, cli, keys, demoChangefeed)
		if err == nil && int64(cp) >= resp.Header.Revision {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint %d (%v) not at the revision %d after the load", cp, err, resp.Header.Revision)
		}
	}
	src, err := cli.Get(ctx, demoSourcePrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || src.Count == 0 {
		t.Fatalf("the load left no key under %s (%v)", demoSourcePrefix, err)
	}
	res := mustRun(t, exitOK, "ctl", "--etcd", etcdURL, "diff", "demo")
	if !strings.Contains(res.stdout, "0 differing keys") {
		t.Fatalf("diff: %s", res.stdout)
	}
	st := mustRun(t, exitOK, "ctl", "--etcd", etcdURL, "status", "--json")
	if !strings.Contains(st.stdout, `"lag_revisions"`) || strings.Contains(st.stdout, `"lag_seconds_error"`) {
		t.Fatalf("status without the lag from the nodes: %s", st.stdout)
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	p.waitExit(t, 20*time.Second)
}

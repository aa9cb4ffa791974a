package etcdcdc

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/span"
)

// TestBrokenStreamWhileCatchingUp runs the case that lost data on Debian's etcd (3.4.23, without
// the fix of etcd-io/etcd#15220): a dispatcher starts far behind the source, so its watch is
// still catching up when its stream breaks (the etcd process is killed and started again). On
// such an etcd a progress request answered ahead of the history makes the client resume above
// it and the history never arrives; a factory that learnt the version advances by reads and asks
// nothing, and every event is written. It needs an etcd binary on PATH (CI installs Debian's)
// and is skipped without; with a fixed etcd it passes by the other road (progress requests).
func TestBrokenStreamWhileCatchingUp(t *testing.T) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("no etcd binary on PATH")
	}
	dir := t.TempDir()
	client, peer := loopbackURL(t), loopbackURL(t)
	args := []string{"--name", "m", "--data-dir", filepath.Join(dir, "m"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "m=" + peer,
		"--log-level", "error"}
	var proc *exec.Cmd
	startEtcd := func() {
		proc = exec.Command(bin, args...)
		if err := proc.Start(); err != nil {
			t.Fatal(err)
		}
	}
	startEtcd()
	t.Cleanup(func() { _ = proc.Process.Kill(); _ = proc.Wait() })
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd %s (progress requests trusted: %v)", st.Version, progressRequestsSafe(st.Version))
	from := st.Header.Revision
	const keys = 40000
	for i := 0; i < keys; i += 100 {
		ops := make([]clientv3.Op, 0, 100)
		for j := range 100 {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("/src/%06d", i+j), strings.Repeat("x", 200)))
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	head := rev(t, cli)

	sink, err := NewFileSink(t.TempDir(), "cf", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFactory(FactoryConfig{Node: "n1", Changefeed: "cf", Source: &etcdutil.SourceConfig{Prefix: "/src/", Endpoints: []string{client}},
		Sink: sink, ProgressInterval: 5 * time.Millisecond, ProbeInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	// The first probe asks the version; a dispatcher started before it would meet the mode
	// that holds until then (reads), which proves nothing about the version check.
	for deadline := time.Now().Add(5 * time.Second); !f.mode.pinned && f.mode.checks.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no version check")
		}
	}
	d := newTestDispatcher(t, f, did(1, 1), span.TableSpan(1), from)
	time.Sleep(30 * time.Millisecond) // a few progress intervals into the catch-up
	_ = proc.Process.Kill()
	_ = proc.Wait()
	startEtcd()
	waitCheckpointFor(t, d, head, 30*time.Second)
	if n := d.events.Load(); n != keys {
		t.Fatalf("%d events written through revision %d, want %d (progress requests sent: %d)", n, head, keys, f.streams.asked.Load())
	}
}

func loopbackURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

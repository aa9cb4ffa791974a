package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// TestDrainOnShutdown stops the maintainer's node with SIGTERM under --drain-on-shutdown: its
// spans move to the other node before it stops (its log says so and the survivor holds all of
// them), and the maintainer role moves at once, long before the 5s session TTL would expire.
func TestDrainOnShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and two server processes")
	}
	srv := embedetcd.StartForTest(t)
	ep := srv.ClientURLs()[0]
	cli := srv.Client(t)
	keys := etcdutil.Keys{Cluster: "ctltest"}
	procs, logs := map[string]*exec.Cmd{}, map[string]string{}
	for _, id := range []string{"n1", "n2"} {
		procs[id], logs[id] = startServerProcess(t, ep, id, "--drain-on-shutdown", "--drain-timeout", "10s")
	}
	mustRun(t, exitOK, ctlArgs(ep, "changefeed", "create", "demo", "--tables", "1-8")...)
	status := func() etcdutil.ChangefeedStatus {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, _ := etcdutil.GetStatus(ctx, cli, keys, "demo")
		return st
	}
	waitUntil := func(what string, d time.Duration, cond func(etcdutil.ChangefeedStatus) bool) etcdutil.ChangefeedStatus {
		t.Helper()
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if st := status(); cond(st) {
				return st
			}
		}
		t.Fatalf("%s: not within %v; status %+v", what, d, status())
		return etcdutil.ChangefeedStatus{}
	}
	st := waitUntil("spans on both nodes", 30*time.Second, func(st etcdutil.ChangefeedStatus) bool {
		return st.Spans["replicating"] == 8 && st.NodeSpans["n1"] > 0 && st.NodeSpans["n2"] > 0
	})
	victim, survivor := st.Maintainer, "n1"
	if victim == "n1" {
		survivor = "n2"
	}
	start := time.Now()
	if err := procs[victim].Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- procs[victim].Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s after SIGTERM: %v", victim, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop after SIGTERM", victim)
	}
	stopped := time.Since(start)
	t.Cleanup(func() {
		if t.Failed() {
			for id, path := range logs {
				b, _ := os.ReadFile(path)
				t.Logf("log of %s:\n%s", id, b)
			}
		}
	})
	st = waitUntil("the survivor maintains everything", 3*time.Second, func(st etcdutil.ChangefeedStatus) bool {
		return st.Maintainer == survivor && st.Bootstrapped && st.Spans["replicating"] == 8 && st.NodeSpans[survivor] == 8
	})
	took := time.Since(start)
	log, err := os.ReadFile(logs[victim])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "drained before shutdown") {
		t.Fatalf("%s's log does not show the drain:\n%s", victim, log)
	}
	t.Logf("%s drained and stopped in %v; %s maintains all 8 spans %v after SIGTERM", victim, stopped, survivor, took)
	if took-stopped > time.Second {
		t.Errorf("maintainer hand-over took %v after the process stopped; a graceful stop resigns at once", took-stopped)
	}
}

// startServerProcess starts `tidemark server` as node id in cluster ctltest and returns it and
// its log file; it is killed at test end.
func startServerProcess(t *testing.T, ep, id string, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	args := append([]string{"server", "--etcd", ep, "--addr", "127.0.0.1:" + freePort(t), "--status-addr",
		"127.0.0.1:" + freePort(t), "--cluster", "ctltest", "--data-dir", dir, "--node-id", id, "--session-ttl", "5s",
		"--log-file", log}, extra...)
	cmd := exec.Command(binPath, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, log
}

func freePort(t *testing.T) string {
	t.Helper()
	base := freeBasePort(t, 1)
	return fmt.Sprint(base)
}

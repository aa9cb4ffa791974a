package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func startShell(t *testing.T, id, script string) *child {
	t.Helper()
	c := &child{id: id, logPath: filepath.Join(t.TempDir(), id+".log")}
	if err := startChild("/bin/sh", c, []string{"-c", script}); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	return c
}

func TestStopChildren(t *testing.T) {
	polite := startShell(t, "polite", "sleep 30")
	stubborn := startShell(t, "stubborn", "trap '' TERM; echo ready; while :; do sleep 0.05; done")
	// Give the stubborn shell time to install its trap before it is signalled.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := readFile(stubborn.logPath); strings.Contains(b, "ready") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	killed := stopChildren([]*child{polite, stubborn}, 300*time.Millisecond)
	if len(killed) != 1 || killed[0] != "stubborn" {
		t.Errorf("killed = %v, want [stubborn]", killed)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopChildren took %s", d)
	}
	for _, c := range []*child{polite, stubborn} {
		if ok, _ := c.exited(); !ok {
			t.Errorf("%s has not exited", c.id)
		}
	}
}

func TestStopChildrenAllGraceful(t *testing.T) {
	a, b := startShell(t, "a", "sleep 30"), startShell(t, "b", "exit 3")
	select { // b has exited on its own before the stop, as a crashed node would have
	case <-b.done:
	case <-time.After(5 * time.Second):
		t.Fatal("b did not exit")
	}
	if killed := stopChildren([]*child{a, b}, 5*time.Second); len(killed) != 0 {
		t.Errorf("killed = %v, want none", killed)
	}
	if _, err := b.exited(); err == nil || !strings.Contains(exitText(err), "exit status 3") {
		t.Errorf("b exit = %v, want exit status 3", err)
	}
}

func TestPlaygroundPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	res := runBin(t, "playground", "--nodes", "1", "--base-port", strconv.Itoa(port),
		"--etcd-client-url", "http://127.0.0.1:"+strconv.Itoa(port+2))
	if res.code != exitError || !strings.Contains(res.stderr, "127.0.0.1:"+strconv.Itoa(port)+" for gRPC of node 1 (--base-port) is not free") {
		t.Errorf("exit %d, stderr %q; want exit 1 naming the busy port", res.code, res.stderr)
	}
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

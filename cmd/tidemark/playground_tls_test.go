package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPlaygroundTLS: `playground --tls` runs its nodes with certificates it made, serves the
// status API over HTTPS, and the ctl commands it prints work as printed.
func TestPlaygroundTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and two server processes")
	}
	tmp := t.TempDir()
	base := freeBasePort(t, 5) // 2 nodes x 2 ports, then the etcd client port
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", base+4)
	p := startPlayground(t, tmp, "--dispatcher", "sim", "--tls", "--nodes", "2", "--tables", "20", "--base-port", strconv.Itoa(base),
		"--etcd-client-url", etcdURL)
	if line := p.waitLine(t, "tidemark playground:", 30*time.Second); !strings.Contains(line, "mutual TLS") {
		t.Fatalf("intro does not say TLS: %q", line)
	}
	dir := strings.TrimSpace(strings.SplitN(p.waitLine(t, "data and logs:", 5*time.Second), ":", 2)[1])
	command := func(label string) []string {
		line := p.waitLine(t, label, 5*time.Second)
		fields := strings.Fields(strings.SplitN(line, ":", 2)[1])
		if len(fields) < 3 || fields[0] != "tidemark" || fields[1] != "ctl" {
			t.Fatalf("%s line %q is not a ctl command", label, line)
		}
		return fields[2:]
	}
	status, spans := command("status:"), command("spans:")
	if !strings.Contains(strings.Join(spans, " "), "--tls-ca "+filepath.Join(dir, "certs", "ca.pem")) {
		t.Fatalf("spans command %v lacks the CA", spans)
	}
	if line := p.waitLine(t, "node-1 pid ", 10*time.Second); !strings.Contains(line, "https://") {
		t.Fatalf("node line %q does not show an https status URL", line)
	}
	p.waitLineOrLogs(t, "spans 20/20 replicating", 60*time.Second, dir)

	res := runBin(t, append([]string{"ctl"}, status...)...)
	if res.code != exitOK || !strings.Contains(res.stdout, "2 of 2 nodes alive") {
		t.Fatalf("ctl %v: exit %d\n%s%s", status, res.code, res.stdout, res.stderr)
	}
	// spans reads the maintainer's HTTPS status API.
	res = runBin(t, append(append([]string{"ctl"}, spans...), "--limit", "0")...)
	if res.code != exitOK || strings.Count(res.stdout, "replicating") != 20 {
		t.Fatalf("ctl %v: exit %d\n%s%s", spans, res.code, res.stdout, res.stderr)
	}
	log, err := os.ReadFile(filepath.Join(dir, "node-1.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `"tls":true`) || strings.Contains(string(log), "peers are not authenticated") {
		t.Fatalf("node-1 did not run with TLS; its log:\n%s", log)
	}

	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	p.waitExit(t, 20*time.Second)
}

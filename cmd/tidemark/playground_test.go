package main

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidemark/tidemark/etcdutil"
)

// freeBasePort finds n consecutive free ports, between 20000 and 50000 or within
// TIDEMARK_TEST_PORTS=LO-HI when set (machines shared by several test runs give each a range).
// Another process may take one before the playground binds it; the playground then fails with
// a clear error and the test says so.
func freeBasePort(t *testing.T, n int) int {
	t.Helper()
	lo, hi := 20000, 50000
	if r := os.Getenv("TIDEMARK_TEST_PORTS"); r != "" {
		a, b, _ := strings.Cut(r, "-")
		l, err1 := strconv.Atoi(a)
		h, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || h-l < n {
			t.Fatalf("TIDEMARK_TEST_PORTS=%q: want LO-HI spanning at least %d ports", r, n)
		}
		lo, hi = l, h
	}
	for range 50 {
		base := lo + rand.IntN(hi-lo-n+2)
		if portsFree(base, n) {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports found", n)
	return 0
}

func portsFree(base, n int) bool {
	var open []net.Listener
	defer func() {
		for _, l := range open {
			_ = l.Close()
		}
	}()
	for p := base; p < base+n; p++ {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		open = append(open, l)
	}
	return true
}

// playgroundRun is a running `tidemark playground` and what it printed.
type playgroundRun struct {
	cmd     *exec.Cmd
	lines   chan string   // stdout, line by line; closed at EOF
	out     []string      // every line read so far
	exited  chan struct{} // closed when the process has exited; waitErr is then set
	waitErr error
}

// waitLine reads lines until one contains want, or fails the test after d.
func (p *playgroundRun) waitLine(t *testing.T, want string, d time.Duration) string {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("playground exited before printing %q; output:\n%s", want, strings.Join(p.out, "\n"))
			}
			p.out = append(p.out, line)
			if strings.Contains(line, want) {
				return line
			}
		case <-deadline:
			t.Fatalf("no line with %q within %s; output:\n%s", want, d, strings.Join(p.out, "\n"))
		}
	}
}

func startPlayground(t *testing.T, tmp string, args ...string) *playgroundRun {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"playground"}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start playground: %v", err)
	}
	p := &playgroundRun{cmd: cmd, lines: make(chan string, 1024), exited: make(chan struct{})}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	// SIGKILL reaches the children too, through their parent-death signal.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("playground pid %d did not exit after SIGKILL", cmd.Process.Pid)
		}
	})
	return p
}

func TestPlaygroundSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three server processes")
	}
	tmp := t.TempDir()
	base := freeBasePort(t, 7) // 3 nodes x 2 ports, then the etcd client port
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", base+6)
	p := startPlayground(t, tmp, "--dispatcher", "sim", "--nodes", "3", "--tables", "50", "--base-port", strconv.Itoa(base),
		"--etcd-client-url", etcdURL)

	dirLine := p.waitLine(t, "data and logs:", 30*time.Second)
	dir := strings.TrimSpace(strings.SplitN(dirLine, ":", 2)[1])
	if !strings.HasPrefix(dir, tmp) {
		t.Fatalf("playground dir %q is not under TMPDIR %q", dir, tmp)
	}
	var pids []int
	for i := 1; i <= 3; i++ {
		fields := strings.Fields(p.waitLine(t, fmt.Sprintf("node-%d pid ", i), 10*time.Second))
		pid, err := strconv.Atoi(fields[2])
		if err != nil {
			t.Fatalf("bad pid line %q", fields)
		}
		pids = append(pids, pid)
	}
	p.waitLineOrLogs(t, "spans 50/50 replicating", 60*time.Second, dir)

	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	p.waitExit(t, 20*time.Second)
	for i, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("node-%d (pid %d) still exists after the playground stopped (kill 0: %v)", i+1, pid, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s still exists after the playground stopped (stat: %v)", dir, err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) > 0 {
		t.Errorf("left behind in TMPDIR: %v", left)
	}
}

// waitLineOrLogs is waitLine that also shows the nodes' log tails when it fails, since the
// playground removes them on exit.
func (p *playgroundRun) waitLineOrLogs(t *testing.T, want string, d time.Duration, dir string) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(dir, "node-*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("last lines of %s:\n%s", l, strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
	})
	p.waitLine(t, want, d)
}

// waitExit waits for the playground to exit with code 0, bounded by d.
func (p *playgroundRun) waitExit(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Fatalf("playground exit after SIGINT: %v, want exit code 0; output:\n%s", p.waitErr, strings.Join(p.out, "\n"))
		}
	case <-time.After(d):
		t.Fatalf("playground still running %s after SIGINT", d)
	}
}

func TestSpanErrorsSummary(t *testing.T) {
	got := spanErrorsSummary(map[string]etcdutil.NodeSpanErrors{
		"n3": {Spans: 2, Error: "dispatcher: flush sink /d/s.jsonl: write /d/s.jsonl: no space left on device"},
		"n1": {Spans: 1, Error: "injected"},
	})
	want := "sink errors: n1 1 spans (injected), n3 2 spans (write /d/s.jsonl: no space left on device)"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

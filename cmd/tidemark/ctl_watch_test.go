//go:build linux

package main

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// ptyOutput collects what a child writes to its terminal.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *ptyOutput) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *ptyOutput) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// waitFor waits until cond holds on the output so far, or fails after d.
func (p *ptyOutput) waitFor(t *testing.T, what string, d time.Duration, cond func(string) bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond(p.String()) {
			return
		}
	}
	t.Fatalf("terminal never showed %s within %v; it shows:\n%q", what, d, p.String())
}

// TestStatusWatchRedraws runs `ctl status --watch` on a pseudo-terminal, changes the cluster, and
// checks that the screen is cleared and redrawn with the change, without any polling interval
// (the watch alone triggers it), and that Ctrl-C ends it with exit code 0.
func TestStatusWatchRedraws(t *testing.T) {
	srv := embedetcd.StartForTest(t)
	ep := srv.ClientURLs()[0]
	fakeNode(t, srv, "n1")
	mustRun(t, exitOK, ctlArgs(ep, "changefeed", "create", "first", "--tables", "1-3", "--start-ts", "5")...)

	controller, terminal := openPTY(t)
	cmd := exec.Command(binPath, ctlArgs(ep, "status", "--watch")...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = terminal, terminal, terminal
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	_ = terminal.Close()
	out := &ptyOutput{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := controller.Read(b)
			_, _ = out.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	out.waitFor(t, "the first frame", 10*time.Second, func(s string) bool {
		return strings.Contains(s, clearScreen) && strings.Contains(s, "first") && strings.Contains(s, "1 of 1 nodes alive")
	})
	frames := strings.Count(out.String(), clearScreen)

	mustRun(t, exitOK, ctlArgs(ep, "changefeed", "create", "second", "--tables", "7", "--start-ts", "5")...)
	out.waitFor(t, "a redraw with the new changefeed", 5*time.Second, func(s string) bool {
		last := s[strings.LastIndex(s, clearScreen):]
		return strings.Count(s, clearScreen) > frames && strings.Contains(last, "second") && strings.Contains(last, "first")
	})
	frames = strings.Count(out.String(), clearScreen)
	// Nothing changes: no redraw (it follows the watch, it does not poll).
	time.Sleep(700 * time.Millisecond)
	if n := strings.Count(out.String(), clearScreen); n != frames {
		t.Errorf("%d redraws while nothing changed", n-frames)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("status --watch after Ctrl-C: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("status --watch did not stop on Ctrl-C")
	}
}

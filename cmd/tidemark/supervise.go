package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// child is one `tidemark server` process started by the playground.
type child struct {
	id, addr, statusAddr, dataDir, logPath string

	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // how it exited; read only after done is closed
}

// startChild starts `self server ...` for c. The child gets its own process group so that a
// terminal's Ctrl-C reaches only the playground, which then stops the children in order; and
// (on Linux) a parent-death signal so that no child outlives a playground that was killed.
func startChild(self string, c *child, serverArgs []string) error {
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open log file of %s: %w", c.id, err)
	}
	// The child logs to the same file through --log-file; its stderr goes there too so that a
	// crash before the logger exists is not lost. O_APPEND keeps the two writers from clobbering.
	c.cmd = exec.Command(self, serverArgs...)
	c.cmd.Stdout = logf
	c.cmd.Stderr = logf
	c.cmd.SysProcAttr = childProcAttr()
	if err := c.cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("cannot start %s (%s): %w", c.id, self, err)
	}
	_ = logf.Close() // the child holds its own descriptor now
	c.done = make(chan struct{})
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	return nil
}

// exited reports whether the process is gone, and how it ended.
func (c *child) exited() (bool, error) {
	select {
	case <-c.done:
		return true, c.err
	default:
		return false, nil
	}
}

// signalGroup sends sig to the child's whole process group (its pgid is its pid).
func (c *child) signalGroup(sig syscall.Signal) {
	if ok, _ := c.exited(); ok {
		return
	}
	if err := syscall.Kill(-c.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = c.cmd.Process.Signal(sig)
	}
}

// stopChildren asks every child to stop gracefully with SIGTERM, waits up to grace for all of
// them, then SIGKILLs the rest and waits for them to be reaped. It returns the IDs that had to
// be killed.
func stopChildren(children []*child, grace time.Duration) []string {
	for _, c := range children {
		c.signalGroup(syscall.SIGTERM)
	}
	if waitAll(children, grace) {
		return nil
	}
	var killed []string
	for _, c := range children {
		if ok, _ := c.exited(); !ok {
			killed = append(killed, c.id)
			c.signalGroup(syscall.SIGKILL)
		}
	}
	for _, c := range children {
		<-c.done // SIGKILL cannot be caught or ignored, so this wait is short
	}
	return killed
}

// waitAll waits until every child has exited or d has passed; it reports whether all exited.
func waitAll(children []*child, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for _, c := range children {
		select {
		case <-c.done:
		case <-t.C:
			return false
		}
	}
	return true
}

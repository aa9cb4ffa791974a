package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes a started server die with the harness: an interrupted bench (Ctrl-C, a
// killed go run) would otherwise leave its servers running against an etcd that is gone.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

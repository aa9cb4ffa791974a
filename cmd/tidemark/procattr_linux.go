package main

import "syscall"

// childProcAttr puts a child in its own process group and has the kernel SIGKILL it when the
// playground dies, even by SIGKILL, so children never outlive it.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

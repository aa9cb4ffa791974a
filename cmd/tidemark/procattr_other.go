//go:build !linux

package main

import "syscall"

// childProcAttr puts a child in its own process group. Only Linux has a parent-death signal;
// elsewhere a killed playground can leave children behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

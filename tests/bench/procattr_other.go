//go:build !linux

package main

import "os/exec"

// dieWithParent: only Linux has a parent-death signal; elsewhere an interrupted bench may leave
// its servers running.
func dieWithParent(*exec.Cmd) {}

//go:build unix && !linux

package testdaemon

import "syscall"

// sysProcAttr puts the daemon in its own process group; only Linux can
// have it killed when its starter dies.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func signalGroup(pid int, sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }

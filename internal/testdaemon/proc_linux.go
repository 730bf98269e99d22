package testdaemon

import "syscall"

// sysProcAttr puts the daemon in its own process group (a Ctrl-C in the
// terminal reaches only its starter, which ends it in order) and has
// the kernel kill it if its starter dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func signalGroup(pid int, sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }

package syslog

import (
	"errors"
	"net"
	"syscall"
)

// peerClosed reports whether the other end of a stream connection has
// closed it. A syslog server never sends anything, so anything readable
// (end of stream, a reset, stray bytes) means the connection is done.
// Checking before each write matters: a write to a connection the server
// already closed still succeeds locally, and that entry would be lost;
// with this check it goes out on a new connection instead. The check is
// one non-blocking MSG_PEEK syscall, which consumes nothing.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var buf [1]byte
	err = raw.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EINTR):
		case rerr != nil, n == 0, n > 0:
			closed = true
		}
		return true // never wait for readiness
	})
	return closed || err != nil
}

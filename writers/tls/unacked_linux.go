package tls

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// unackedBytes returns a function telling how many bytes written to c
// the peer's TCP stack has not acknowledged yet (SIOCOUTQ: on Linux,
// unsent plus sent-but-unacknowledged bytes).
func unackedBytes(c *net.TCPConn) (func() (int64, error), error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	return func() (int64, error) {
		var n int
		var ierr error
		if err := raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil {
			return 0, fmt.Errorf("socket: %w", err)
		}
		if ierr != nil {
			return 0, fmt.Errorf("reading the socket's send queue: %w", ierr)
		}
		return int64(n), nil
	}, nil
}

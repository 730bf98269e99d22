package receiver

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// growReadBuffer asks the kernel for a datagram socket's receive buffer
// of datagramReadBuffer bytes: a sender's burst (loggen writes a second's
// worth at once) waits there while the read loop catches up, where
// Linux's default of 208 KiB drops it. SO_RCVBUFFORCE passes
// net.core.rmem_max where Caddy may (CAP_NET_ADMIN); elsewhere SO_RCVBUF
// gets what rmem_max allows. It is best effort: the socket works either
// way.
func growReadBuffer(pc net.PacketConn) {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, datagramReadBuffer) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, datagramReadBuffer)
		}
	})
}

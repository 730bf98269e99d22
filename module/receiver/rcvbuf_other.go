//go:build !linux

package receiver

import "net"

// growReadBuffer asks for a datagram socket's receive buffer of
// datagramReadBuffer bytes, as far as the system allows.
func growReadBuffer(pc net.PacketConn) {
	if b, ok := pc.(interface{ SetReadBuffer(int) error }); ok {
		_ = b.SetReadBuffer(datagramReadBuffer)
	}
}

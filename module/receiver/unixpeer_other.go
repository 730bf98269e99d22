//go:build !linux

package receiver

import (
	"errors"
	"net"
)

// unixStreamPeer is the host of a Unix stream connection's records: the
// fixed unixHost where the peer's credentials are not read.
func unixStreamPeer(*net.UnixConn) string { return unixHost }

func unixgramCreds(*net.UnixConn) ([]byte, error) {
	return nil, errors.ErrUnsupported
}

func unixgramPeer([]byte) string { return unixHost }

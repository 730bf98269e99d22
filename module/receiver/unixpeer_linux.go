package receiver

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// unixStreamPeer is the host of a Unix stream connection's records: its
// peer's user, from the credentials the kernel recorded when it
// connected (SO_PEERCRED). The path the client bound its socket to is
// its own choice, so it is never used.
func unixStreamPeer(c *net.UnixConn) string {
	rc, err := c.SyscallConn()
	if err != nil {
		return unixHost
	}
	var cred *unix.Ucred
	ctlErr := rc.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if ctlErr != nil || err != nil {
		return unixHost
	}
	return unixUserHost(cred.Uid)
}

// unixgramCreds asks the kernel to attach each datagram's sender
// credentials (SO_PASSCRED), and returns the buffer ReadMsgUnix needs
// for them.
func unixgramCreds(c *net.UnixConn) ([]byte, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	ctlErr := rc.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	})
	if ctlErr != nil {
		return nil, ctlErr
	}
	if err != nil {
		return nil, fmt.Errorf("setting SO_PASSCRED: %w", err)
	}
	return make([]byte, unix.CmsgSpace(unix.SizeofUcred)), nil
}

// unixgramPeer is the host of a datagram from the credentials in its
// ancillary data (SCM_CREDENTIALS). The buffer only has room for those,
// so the kernel drops any file descriptors a sender attaches; should one
// arrive all the same, it is closed rather than kept open.
func unixgramPeer(oob []byte) string {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return unixHost
	}
	host := unixHost
	for _, m := range msgs {
		if fds, err := unix.ParseUnixRights(&m); err == nil {
			for _, fd := range fds {
				_ = unix.Close(fd)
			}
		} else if cred, err := unix.ParseUnixCredentials(&m); err == nil && host == unixHost {
			host = unixUserHost(cred.Uid)
		}
	}
	return host
}

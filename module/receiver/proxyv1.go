package receiver

import (
	"bytes"
	"net"
)

// maxProxyV1 is the longest PROXY protocol v1 header, its line break
// included (the spec's "PROXY UNKNOWN ffff:...:ffff ... 65535 65535\r\n").
const maxProxyV1 = 107

// lfProxyListener lets a PROXY protocol v1 header end in LF alone, as
// syslog-ng's loggen sends it: the spec asks for CRLF, and the PROXY
// protocol parser refuses anything else. Each connection's first line,
// if it starts with "PROXY " and ends within maxProxyV1 bytes in a bare
// LF, gets the CR inserted before the parser reads it; nothing else is
// changed, and nothing is read past what the first reads return.
type lfProxyListener struct{ net.Listener }

func (l lfProxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lfProxyConn{Conn: c}, nil
}

// lfProxyConn reads the start of a connection, under whatever deadline
// the PROXY parser set, until it knows whether a v1 header ending in LF
// is there, and then hands out what it read, mended, before reading on.
type lfProxyConn struct {
	net.Conn
	checked bool
	pending []byte
}

var proxyV1Sig = []byte("PROXY ")

func (c *lfProxyConn) Read(p []byte) (int, error) {
	if !c.checked {
		c.checked = true
		if err := c.readHeader(); err != nil && len(c.pending) == 0 {
			return 0, err
		}
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// readHeader reads until the first line is known not to be a PROXY v1
// header, or is one and has ended, or maxProxyV1 bytes have come; what
// it read is left in pending, a bare LF ending the header made CRLF.
func (c *lfProxyConn) readHeader() error {
	buf := make([]byte, 0, 512)
	for {
		n, err := c.Conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		c.pending = buf
		if err != nil {
			return err
		}
		k := min(len(buf), len(proxyV1Sig))
		if !bytes.Equal(buf[:k], proxyV1Sig[:k]) {
			return nil // not a v1 header
		}
		head := buf[:min(len(buf), maxProxyV1)]
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			if i == 0 || buf[i-1] != '\r' {
				mended := make([]byte, 0, len(buf)+1)
				mended = append(append(append(mended, buf[:i]...), '\r'), buf[i:]...)
				c.pending = mended
			}
			return nil
		}
		if len(buf) >= maxProxyV1 {
			return nil // too long: the parser says so
		}
	}
}

// NetConn returns the connection underneath, as tls.Conn's does.
func (c *lfProxyConn) NetConn() net.Conn { return c.Conn }

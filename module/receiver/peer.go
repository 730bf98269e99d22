package receiver

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"

	proxyproto "github.com/pires/go-proxyproto"
)

// socketPeer returns the key a new connection counts against in
// max_connections_per_peer: the IP address of its socket's other end, or
// for a Unix socket, the host its credentials give (also returned as
// cred). A trusted proxy_protocol peer gives no key: its connection is
// counted against the client its header names, once serveConn has read
// it (in the accept loop, that read would hold up every other client).
func (s *Server) socketPeer(conn net.Conn) (key, cred string) {
	raw := rawConn(conn)
	if uc, ok := raw.(*net.UnixConn); ok {
		host := unixStreamPeer(uc)
		return host, host
	}
	ap, err := netip.ParseAddrPort(raw.RemoteAddr().String())
	if err != nil {
		return raw.RemoteAddr().String(), ""
	}
	addr := ap.Addr().Unmap()
	if s.trustsProxy(addr) {
		return "", ""
	}
	return addr.String(), ""
}

// trustsProxy reports whether addr may send a PROXY protocol header
// (proxy_protocol's allow).
func (s *Server) trustsProxy(addr netip.Addr) bool {
	for _, p := range s.ppAllow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// rawPeer is the address of the socket's other end, without reading a
// PROXY header: in the accept loop, RemoteAddr of a proxyproto
// connection would wait for its header and hold up every other client.
func rawPeer(c net.Conn) string {
	return rawConn(c).RemoteAddr().String()
}

// rawConn is the socket under a TLS or PROXY protocol connection.
func rawConn(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if pc, ok := c.(*proxyproto.Conn); ok {
		c = pc.Raw()
	}
	return c
}

func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap().String()
	}
	return unixHost // a Unix socket: its path is the client's choice
}

// unixHost is the host of records from a Unix socket whose peer's
// credentials are unknown.
const unixHost = "unix"

// unixUserHost is the host of records from a Unix socket peer running as
// uid.
func unixUserHost(uid uint32) string { return fmt.Sprintf("unix-uid-%d", uid) }

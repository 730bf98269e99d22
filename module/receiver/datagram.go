package receiver

import (
	"errors"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/module/status"
)

func (s *Server) serveDatagrams(pc net.PacketConn, d *door, source string) {
	defer s.wg.Done()
	buf := make([]byte, maxDatagram)
	lim := &logLimiter{}
	one := new(oneRecord)
	uc, oob := s.unixgram(pc, source)
	growReadBuffer(unwrapPacketConn(pc))
	for {
		var (
			n, oobn int
			addr    net.Addr
			err     error
		)
		if uc != nil {
			n, oobn, _, _, err = uc.ReadMsgUnix(buf, oob)
		} else {
			n, addr, err = pc.ReadFrom(buf)
		}
		if err != nil {
			if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		var peer string
		if uc != nil {
			peer = unixgramPeer(oob[:oobn])
		} else {
			peer = hostOf(addr)
		}
		msg, err := s.proto.Datagram(buf[:n], s.MaxMessageSize)
		if err != nil {
			status.Source(source).Rejected.Add(1)
			lim.warn(s.logger, "dropping datagram", source, peer, err)
			continue
		}
		s.handle(msg, time.Now(), peer, d, source, lim, one)
	}
}

// unixgram returns the socket of a unixgram listener, set up to receive
// its senders' credentials, and the buffer for them; nil for others, or
// where credentials cannot be had (then the host is unixHost).
func (s *Server) unixgram(pc net.PacketConn, source string) (*net.UnixConn, []byte) {
	uc, ok := unwrapPacketConn(pc).(*net.UnixConn)
	if !ok {
		return nil, nil
	}
	oob, err := unixgramCreds(uc)
	if err != nil {
		s.logger.Warn("datagrams' senders unknown: their host is "+unixHost, zap.String("receiver", source), zap.Error(err))
		return nil, nil
	}
	return uc, oob
}

// datagramReadBuffer is the receive buffer datagram sockets ask for.
const datagramReadBuffer = 4 << 20

// unwrapPacketConn returns the socket under Caddy's wrappers of its
// pooled packet sockets (each wrapper can unwrap).
func unwrapPacketConn(pc net.PacketConn) net.PacketConn {
	for {
		w, ok := pc.(interface{ Unwrap() net.PacketConn })
		if !ok {
			return pc
		}
		pc = w.Unwrap()
	}
}

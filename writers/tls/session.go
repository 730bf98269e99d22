package tls

import (
	"context"
	stdtls "crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/forward"
	"github.com/caddy-applog/caddy-applog/internal/oneline"
)

// transport is syslog over TLS (RFC 5425, or newline framing) to one
// aggregator: a forward.Transport. A record counts as acknowledged once
// the aggregator's TCP stack acknowledged its bytes and the connection
// stayed up for confirmAfter after that.
type transport struct {
	address     string
	tlsConfig   *stdtls.Config
	lf          bool // newline framing instead of octet counting
	dialTimeout time.Duration
}

const (
	// confirmAfter is how long the connection must stay up after the
	// peer's TCP acknowledged bytes before the records in them leave the
	// queue. A peer that closes its socket with data still unread makes
	// its kernel answer with a reset, and a TLS 1.3 server that rejects
	// our certificate does so only after our handshake has completed:
	// either way the connection breaks within this time and the records
	// are sent again instead of being lost.
	confirmAfter = time.Second
	writeTimeout = 30 * time.Second
)

// Connect dials the aggregator and completes the TLS handshake within
// the dial timeout, or until ctx ends.
func (t *transport) Connect(ctx context.Context) (forward.Session, error) {
	dialer := net.Dialer{Timeout: t.dialTimeout}
	dctx, cancel := context.WithTimeout(ctx, t.dialTimeout)
	defer cancel()
	raw, err := dialer.DialContext(dctx, "tcp", t.address)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	tcp := raw.(*net.TCPConn)
	counted := &countingConn{TCPConn: tcp}
	conn := stdtls.Client(counted, t.tlsConfig)
	if err := conn.HandshakeContext(dctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	unacked, err := unackedBytes(tcp)
	if err != nil {
		conn.Close()
		return nil, err
	}
	s := &session{t: t, conn: conn, counted: counted, unacked: unacked, start: time.Now(), broken: make(chan struct{})}
	// The aggregator sends nothing, so anything read (end of stream, a
	// reset, an alert) ends the connection. Reading also consumes TLS
	// 1.3 session tickets.
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				s.brokenErr = err
				close(s.broken)
				return
			}
		}
	}()
	// Do not let a peer that stopped reading hold up the sender that
	// takes over for a whole writeTimeout.
	s.stopWatch = context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Now().Add(forward.HandoverTimeout)) })
	return s, nil
}

// session is one TLS connection to the aggregator.
type session struct {
	t         *transport
	conn      *stdtls.Conn
	counted   *countingConn
	unacked   func() (int64, error)
	start     time.Time
	stopWatch func() bool

	broken    chan struct{} // closed by the reader when the connection ends
	brokenErr error

	buf       []byte
	inflight  []flight
	acks      []ack
	confirmed int64 // bytes of the stream confirmed
	settled   int64 // records confirmed
}

// flight is one write to the connection: how many records it carried
// and where its last byte is in the connection's byte stream.
type flight struct {
	wireEnd int64
	n       int64
}

// ack is how many bytes the peer had acknowledged at a moment.
type ack struct {
	at    time.Time
	acked int64
}

func (s *session) Broken() <-chan struct{} { return s.broken }

func (s *session) brokenBy() error {
	err := s.brokenErr
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("connection closed by the server")
	}
	// crypto/tls reports an alert from the peer as an OpError
	// "remote error" (its alert type is not exported).
	if oe := (*net.OpError)(nil); errors.As(err, &oe) && oe.Op == "remote error" {
		return fmt.Errorf("the server ended the connection: %w (does it accept this client certificate?)", err)
	}
	return fmt.Errorf("connection broken: %w", err)
}

// Send frames recs and writes them in one write.
func (s *session) Send(recs []forward.Record) error {
	buf := s.buf[:0]
	for _, r := range recs {
		if s.t.lf {
			// A line break left in an entry (the console encoder
			// keeps a message's) would end the frame early and
			// start a message the record chose: escape it, as the
			// syslog writer's lf framing does.
			buf = append(buf, oneline.Escape(r.Data)...)
			buf = append(buf, '\n')
		} else {
			buf = strconv.AppendInt(buf, int64(len(r.Data)), 10)
			buf = append(buf, ' ')
			buf = append(buf, r.Data...)
		}
	}
	s.buf = buf
	if err := s.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	if _, err := s.conn.Write(buf); err != nil {
		select {
		case <-s.broken:
			return s.brokenBy()
		default:
		}
		return fmt.Errorf("sending: %w", err)
	}
	s.inflight = append(s.inflight, flight{wireEnd: s.counted.n.Load(), n: int64(len(recs))})
	return nil
}

// Acked counts the records whose bytes the peer's TCP stack
// acknowledged at least confirmAfter ago, on a connection that has been
// up for confirmAfter.
func (s *session) Acked(wait time.Duration) (forward.Ack, error) {
	if forward.Pause(wait, s.broken) {
		return forward.Ack{}, s.brokenBy()
	}
	if len(s.inflight) > 0 {
		now := time.Now()
		n, err := s.unacked()
		if err != nil {
			return forward.Ack{}, err
		}
		acked := s.counted.n.Load() - n
		if len(s.acks) == 0 || s.acks[len(s.acks)-1].acked != acked {
			s.acks = append(s.acks, ack{now, acked})
		}
		if now.Sub(s.start) >= confirmAfter {
			for len(s.acks) > 0 && now.Sub(s.acks[0].at) >= confirmAfter {
				s.confirmed = s.acks[0].acked
				s.acks = s.acks[1:]
			}
		}
		for len(s.inflight) > 0 && s.inflight[0].wireEnd <= s.confirmed {
			s.settled += s.inflight[0].n
			s.inflight = s.inflight[1:]
		}
	}
	return forward.Ack{Settled: s.settled}, nil
}

// Close ends the connection: after a handover, by closing our side of
// the stream first, so the aggregator reads to its end.
func (s *session) Close(graceful bool) error {
	s.stopWatch()
	if graceful {
		_ = s.conn.CloseWrite()
	}
	err := s.conn.Close()
	<-s.broken // closing the connection ends the reader
	return err
}

// countingConn counts the bytes written to the socket (TLS records
// included), to match them against what the peer acknowledged.
type countingConn struct {
	*net.TCPConn
	n atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

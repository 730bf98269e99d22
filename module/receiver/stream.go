package receiver

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/module/status"
)

func (s *Server) serveStreams(l net.Listener, d *door, source string) {
	defer s.wg.Done()
	for {
		conn, err := l.Accept()
		if err != nil {
			if s.stopping.Load() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Caddy's pooled listener, once closed, returns an error of
			// its own, not net.ErrClosed: stopping, checked above, is
			// what covers it.
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.logger.Warn("accepting connection", zap.String("receiver", source), zap.Error(err))
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		key, cred := s.socketPeer(conn)
		p, err := d.add(conn, key, s.MaxConnections, s.MaxConnectionsPerPeer)
		if err != nil {
			s.refuse(conn, d, p, source, rawPeer(conn), err)
			continue
		}
		go s.serveConn(conn, d, p, cred, source)
	}
}

// refuse closes a connection over a limit, with a log line throttled per
// peer, or per door when the door is full.
func (s *Server) refuse(conn net.Conn, d *door, p *peer, source, peer string, err error) {
	status.Source(source).Rejected.Add(1)
	_ = conn.Close()
	lim, msg := &d.refused, "too many connections, closing one"
	if errors.Is(err, errPeerFull) {
		lim, msg = &p.lim, "too many connections from one peer, closing one"
	}
	lim.warn(s.logger, msg, source, peer, err,
		zap.Int("max_connections", s.MaxConnections),
		zap.Int("max_connections_per_peer", s.MaxConnectionsPerPeer))
}

// serveConn reads messages until the connection ends or fails. cred is
// the host a Unix socket's credentials give, empty for others.
func (s *Server) serveConn(conn net.Conn, d *door, p *peer, cred, source string) {
	// Deferred calls run last first: the connection stops counting
	// against the limits before its peer can see it closed and connect
	// again, and the goroutine counts as live until its very end.
	defer d.exit()
	defer conn.Close()
	defer d.done(conn)
	// For a trusted proxy, this reads the PROXY header.
	peer := cred
	if peer == "" {
		peer = hostOf(conn.RemoteAddr())
	}
	if p == nil {
		key := peer
		if key == "" {
			key = rawPeer(conn)
		}
		var err error
		if p, err = d.rekey(conn, key, s.MaxConnectionsPerPeer); err != nil {
			s.refuse(conn, d, p, source, peer, err)
			return
		}
	}
	// The TLS handshake would otherwise happen in the first read, under
	// the idle timeout: a client could hold the connection for that
	// long by trickling its hello.
	if tc, ok := conn.(*tls.Conn); ok {
		_ = tc.SetDeadline(time.Now().Add(time.Duration(s.ReadTimeout)))
		if err := tc.Handshake(); err != nil {
			status.Source(source).Rejected.Add(1)
			p.lim.warn(s.logger, "closing connection", source, peer, fmt.Errorf("TLS handshake: %w", err))
			return
		}
		_ = tc.SetDeadline(time.Time{})
	}
	dr := &deadlineReader{conn: conn, read: time.Duration(s.ReadTimeout), idle: time.Duration(s.IdleTimeout)}
	sc := bufio.NewScanner(dr)
	// The buffer starts small and doubles only when a message fills it,
	// so a connection holds about what it has sent, never what a frame
	// announces: idle connections and trickling ones cost little.
	sc.Buffer(make([]byte, 0, min(s.MaxMessageSize+16, startBuffer)), s.MaxMessageSize+16)
	sc.Split(dr.track(s.proto.Split(s.MaxMessageSize)))
	one := new(oneRecord)
	for sc.Scan() {
		s.handle(sc.Bytes(), dr.readAt, peer, d, source, &p.lim, one)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, net.ErrClosed) {
		status.Source(source).Rejected.Add(1)
		p.lim.warn(s.logger, "closing connection", source, peer, err)
	}
}

// deadlineReader sets the connection's read deadline before each read:
// idle while waiting for a message to begin, read from the moment its
// first byte arrived.
type deadlineReader struct {
	conn       net.Conn
	read, idle time.Duration
	started    time.Time // when the current message began; zero between messages
	readAt     time.Time // when the last read returned: the arrival time of what it brought
	// failed is the read error (a timeout, a reset) that ended the
	// connection, if it did not end cleanly.
	failed error
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	deadline := time.Now().Add(r.idle)
	if !r.started.IsZero() {
		deadline = r.started.Add(r.read)
	}
	if err := r.conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := r.conn.Read(p)
	r.readAt = time.Now()
	if err != nil && !errors.Is(err, io.EOF) {
		r.failed = err
	}
	return n, err
}

// track wraps a split function to learn whether a message is underway.
func (r *deadlineReader) track(split bufio.SplitFunc) bufio.SplitFunc {
	return func(data []byte, atEOF bool) (int, []byte, error) {
		if atEOF && r.failed != nil {
			// The scanner would hand over what the failed read left as
			// a last message: a message cut short by a timeout or a
			// reset is not one.
			return 0, nil, r.failed
		}
		adv, tok, err := split(data, atEOF)
		switch {
		case tok != nil || err != nil:
			// The next message began in bytes already read: it
			// started when they arrived, at the latest.
			if adv >= len(data) {
				r.started = time.Time{}
			} else {
				r.started = r.readAt
			}
		case len(data) > 0 && r.started.IsZero():
			r.started = r.readAt
		}
		return adv, tok, err
	}
}

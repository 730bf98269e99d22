// Package receiver holds what the applog app's network receivers share:
// listening on Caddy's pooled sockets, the PROXY protocol, TLS,
// connection limits and timeouts, and keeping live connections served
// across config reloads. A receiver module (syslog, python_socket) embeds
// a Server and supplies a Protocol.
package receiver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	proxyproto "github.com/pires/go-proxyproto"
	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/internal/ratelog"
	"github.com/caddy-applog/caddy-applog/internal/size"
	"github.com/caddy-applog/caddy-applog/internal/tlsconfig"
	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/status"
)

// Protocol is what a receiver module knows about its wire format.
type Protocol interface {
	// Split cuts a stream into messages of at most maxSize bytes.
	Split(maxSize int) bufio.SplitFunc
	// Datagram returns the message a datagram carries.
	Datagram(p []byte, maxSize int) ([]byte, error)
	// Decode turns one message into a record (Host is set by the caller).
	// now is the arrival time. The record's attributes may be appended
	// to attrs (empty, with capacity), which the caller reuses once the
	// record has been submitted, and its strings may point into msg,
	// which the read loop overwrites after the record has been submitted
	// (Submit copies whatever it keeps).
	Decode(msg []byte, now time.Time, attrs []intake.Attr) (intake.Record, error)
}

// Server is the configuration and the machinery shared by receivers.
type Server struct {
	// Addresses to listen on, in Caddy's network address form:
	// `udp/127.0.0.1:5514`, `tcp/:5514`, `tls/:6514` (TCP with the `tls`
	// settings), `unix//path`, `unixgram//path`. At least one.
	Listen []string `json:"listen,omitempty"`

	// The app of every record received here (the receiver declares it).
	// Default: the one each record names.
	App string `json:"app,omitempty"`

	// Use the PROXY protocol header of trusted peers on stream transports,
	// so that a record's host is the sender behind a load balancer.
	ProxyProtocol *ProxyProtocol `json:"proxy_protocol,omitempty"`

	// The certificate, and optionally client CAs, of `tls/` addresses.
	TLS *TLS `json:"tls,omitempty"`

	// The largest message in bytes: a longer one closes its stream
	// connection or drops its datagram. Default: 64KiB.
	MaxMessageSize int `json:"max_message_size,omitempty"`

	// The most simultaneous stream connections per address. Default: 1024.
	MaxConnections int `json:"max_connections,omitempty"`

	// The most simultaneous stream connections per address from one peer
	// (IP address, PROXY header client, or Unix socket user), so one sender
	// cannot lock the others out. Default: 128, or max_connections if lower.
	MaxConnectionsPerPeer int `json:"max_connections_per_peer,omitempty"`

	// How long one message, or a TLS handshake, may take once its first
	// byte has arrived. Default: 30s.
	ReadTimeout caddy.Duration `json:"read_timeout,omitempty"`

	// How long a connection may stay silent between messages; long, since
	// closing one makes Python's SocketHandler lose its next record.
	// Default: 24h.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	name  string // "syslog", "python_socket"
	proto Protocol
	ctx   caddy.Context
	// submitCtx is ctx boxed once as a context.Context: converting the
	// caddy.Context struct at each Submit allocated per message.
	submitCtx context.Context
	logger    *zap.Logger
	tlsConfig *tls.Config
	ppPolicy  proxyproto.ConnPolicyFunc
	ppAllow   []netip.Prefix
	listeners []net.Listener
	packets   []net.PacketConn
	doors     []*door
	// Made in Provision, and pointers: CaddyModule takes module values
	// by value, which must not copy these.
	wg       *sync.WaitGroup
	stopping *atomic.Bool
}

// ProxyProtocol configures the PROXY protocol (v1 and v2). A v1 header
// may end in LF alone, as syslog-ng's loggen sends it, as well as CRLF.
type ProxyProtocol struct {
	// The peers (CIDR ranges) whose PROXY header is used; other peers'
	// headers are not trusted.
	Allow []string `json:"allow,omitempty"`
	// How long to wait for the header. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// TLS configures `tls/` listeners.
type TLS struct {
	// PEM files of the server's certificate and key.
	Certificate string `json:"certificate,omitempty"`
	Key         string `json:"key,omitempty"`
	// A PEM file of CAs: when set, clients must present a certificate
	// signed by one of them (mutual TLS).
	ClientCA string `json:"client_ca,omitempty"`
}

// Defaults.
const (
	DefaultMaxMessageSize = 64 << 10
	defaultMaxConnections = 1024
	defaultMaxPerPeer     = 128
	defaultReadTimeout    = 30 * time.Second
	defaultIdleTimeout    = 24 * time.Hour
	defaultProxyTimeout   = 5 * time.Second
	maxDatagram           = 65535
	// startBuffer is a stream connection's first read buffer.
	startBuffer = 4 << 10
)

// Provision validates the configuration; name is the receiver's, used in
// counters ("syslog/udp/127.0.0.1:5514") and log lines.
func (s *Server) Provision(ctx caddy.Context, name string, proto Protocol) error {
	s.ctx, s.name, s.proto, s.logger = ctx, name, proto, ctx.Logger()
	s.submitCtx = ctx
	s.wg, s.stopping = new(sync.WaitGroup), new(atomic.Bool)
	if len(s.Listen) == 0 {
		return fmt.Errorf("%s: no address to listen on", name)
	}
	if s.MaxMessageSize == 0 {
		s.MaxMessageSize = DefaultMaxMessageSize
	}
	if s.MaxConnections == 0 {
		s.MaxConnections = defaultMaxConnections
	}
	if s.MaxConnectionsPerPeer == 0 {
		s.MaxConnectionsPerPeer = min(defaultMaxPerPeer, s.MaxConnections)
	}
	if s.ReadTimeout == 0 {
		s.ReadTimeout = caddy.Duration(defaultReadTimeout)
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = caddy.Duration(defaultIdleTimeout)
	}
	if s.MaxMessageSize < 0 || s.MaxMessageSize > 16<<20 || s.MaxConnections < 0 || s.MaxConnectionsPerPeer < 0 || s.ReadTimeout < 0 || s.IdleTimeout < 0 {
		return fmt.Errorf("%s: max_message_size must be 1B to 16MiB; limits and timeouts must not be negative", name)
	}
	if err := intake.CheckApp(s.App); s.App != "" && err != nil {
		return fmt.Errorf("%s: app %q: %w", name, s.App, err)
	}
	needTLS := false
	for _, addr := range s.Listen {
		network, _, err := splitListen(addr)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		needTLS = needTLS || network == "tls"
	}
	if needTLS {
		cfg, err := s.TLS.build()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		s.tlsConfig = cfg
	} else if s.TLS != nil {
		return fmt.Errorf("%s: tls settings need a tls/ address", name)
	}
	if pp := s.ProxyProtocol; pp != nil {
		var allow []netip.Prefix
		for _, cidr := range pp.Allow {
			p, err := netip.ParsePrefix(cidr)
			if err != nil {
				return fmt.Errorf("%s: proxy_protocol allow %q: %w", name, cidr, err)
			}
			allow = append(allow, p)
		}
		s.ppAllow = allow
		if pp.Timeout == 0 {
			pp.Timeout = caddy.Duration(defaultProxyTimeout)
		}
		s.ppPolicy = func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			ap, err := netip.ParseAddrPort(o.Upstream.String())
			if err != nil || !s.trustsProxy(ap.Addr().Unmap()) {
				return proxyproto.IGNORE, nil // (a Unix socket peer has no address)
			}
			return proxyproto.USE, nil
		}
	}
	return nil
}

// splitListen splits "udp/127.0.0.1:5514" into "udp" and the address in
// Caddy's network address syntax.
func splitListen(addr string) (network, caddyAddr string, err error) {
	network, rest, ok := strings.Cut(addr, "/")
	if !ok || rest == "" {
		return "", "", fmt.Errorf("listen %q: want <udp|tcp|tls|unix|unixgram>/<address>", addr)
	}
	switch network {
	case "udp", "tcp", "unix", "unixgram", "udp4", "udp6", "tcp4", "tcp6":
		caddyAddr = addr
	case "tls":
		caddyAddr = "tcp/" + rest
	default:
		return "", "", fmt.Errorf("listen %q: transport must be udp, tcp, tls, unix or unixgram", addr)
	}
	if _, err := caddy.ParseNetworkAddress(caddyAddr); err != nil {
		return "", "", fmt.Errorf("listen %q: %w", addr, err)
	}
	return network, caddyAddr, nil
}

func (t *TLS) build() (*tls.Config, error) {
	if t == nil || t.Certificate == "" || t.Key == "" {
		return nil, errors.New("tls/ addresses need tls { certificate <cert> <key> }")
	}
	cert, err := tls.LoadX509KeyPair(t.Certificate, t.Key)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// TLS 1.3 session tickets are sent after the handshake; a log
		// sender only writes, never reads them, so its kernel answers
		// its own close with a reset that discards what it had sent
		// but we had not yet read (loggen lost up to half its messages).
		SessionTicketsDisabled: true,
	}
	if t.ClientCA != "" {
		pool, err := tlsconfig.CertPool(t.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls client_ca: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Start listens and serves, submitting records to in.
func (s *Server) Start(in intake.Intake) error {
	if s.App != "" {
		in.DeclareApp(s.App)
	}
	for _, addr := range s.Listen {
		network, caddyAddr, _ := splitListen(addr)
		na, _ := caddy.ParseNetworkAddress(caddyAddr)
		ln, err := na.Listen(s.ctx, 0, net.ListenConfig{})
		if err != nil {
			_ = s.Stop()
			return fmt.Errorf("%s: listening on %s: %w", s.name, addr, err)
		}
		d := acquireDoor(s.name+"/"+addr, in)
		s.doors = append(s.doors, d)
		source := s.name + "/" + addr
		switch l := ln.(type) {
		case net.PacketConn:
			s.packets = append(s.packets, l)
			s.wg.Add(1)
			go s.serveDatagrams(l, d, source)
		case net.Listener:
			s.listeners = append(s.listeners, l)
			if s.ppPolicy != nil {
				l = &proxyproto.Listener{Listener: lfProxyListener{l}, ConnPolicy: s.ppPolicy, ReadHeaderTimeout: time.Duration(s.ProxyProtocol.Timeout)}
			}
			if network == "tls" {
				l = tls.NewListener(l, s.tlsConfig)
			}
			s.wg.Add(1)
			go s.serveStreams(l, d, source)
		default:
			_ = s.Stop()
			return fmt.Errorf("%s: unexpected listener %T for %s", s.name, ln, addr)
		}
	}
	return nil
}

// Stop stops listening. Connections go on being served, by the config
// that replaced this one, unless no config listens on their address any
// more; then they are closed.
func (s *Server) Stop() error {
	// Caddy "closes" a pooled socket by setting a past deadline, so a
	// read loop sees a timeout, not a closed socket: this flag is what
	// tells it to end.
	s.stopping.Store(true)
	for _, l := range s.listeners {
		_ = l.Close()
	}
	for _, p := range s.packets {
		_ = p.Close()
	}
	s.wg.Wait()
	for _, d := range s.doors {
		d.release(s.logger)
	}
	s.listeners, s.packets, s.doors = nil, nil, nil
	return nil
}

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
			if errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "closed") {
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

// serveConn reads messages until the connection ends or fails. cred is
// the host a Unix socket's credentials give, empty for others.
func (s *Server) serveConn(conn net.Conn, d *door, p *peer, cred, source string) {
	// Deferred calls run last first: the connection stops counting
	// against the limits before its peer can see it closed and connect
	// again.
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

// oneRecord is the batch a read loop submits each message in. Submit
// works synchronously and keeps no reference to the batch, its records'
// attributes or their strings once it has returned, so each loop reuses
// one, with room for a syslog record's attributes: with the message
// decoded in place as well, the receiver allocates nothing per message.
type oneRecord struct {
	batch intake.Batch
	recs  [1]intake.Record
	attrs [8]intake.Attr
}

// handle decodes and submits one message; a bad one is logged (at most
// once a second per connection) and counted, and the next one is read.
func (s *Server) handle(msg []byte, now time.Time, peer string, d *door, source string, lim *logLimiter, one *oneRecord) {
	rec, err := s.proto.Decode(msg, now, one.attrs[:0])
	if err != nil {
		status.Source(source).Rejected.Add(1)
		lim.warn(s.logger, "rejected message", source, peer, err)
		return
	}
	rec.Host = peer
	if s.App != "" {
		rec.App = s.App
	}
	one.recs[0] = rec
	one.batch = intake.Batch{Records: one.recs[:], Source: source, Peer: peer, Received: now}
	_, err = d.intake().Submit(s.submitCtx, &one.batch)
	// Keep no message alive until the next one.
	one.recs[0] = intake.Record{}
	clear(one.attrs[:])
	if err != nil {
		lim.warn(s.logger, "rejected record", source, peer, err)
	}
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

// logLimiter keeps a flood of bad input from flooding the log: a burst
// of logBurst lines, then at most one per logInterval, each with the
// count of those left out before it. The zero value is ready to use.
type logLimiter struct{ ratelog.Limiter }

const (
	logBurst    = 5
	logInterval = time.Second
)

var logRate = ratelog.Rate{Burst: logBurst, Every: logInterval}

// recent reports whether the limiter's burst is not whole again: it then
// has state worth keeping.
func (l *logLimiter) recent() bool { return l.Recent(logRate, time.Now()) }

func (l *logLimiter) warn(logger *zap.Logger, msg, source, peer string, err error, fields ...zap.Field) {
	l.warnAt(time.Now(), logger, msg, source, peer, err, fields...)
}

func (l *logLimiter) warnAt(now time.Time, logger *zap.Logger, msg, source, peer string, err error, fields ...zap.Field) {
	suppressed, ok := l.Allow(logRate, now)
	if !ok {
		return
	}
	logger.Warn(msg, append([]zap.Field{zap.String("receiver", source), zap.String("peer", peer), zap.Error(err), ratelog.Suppressed(suppressed)}, fields...)...)
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

// UnmarshalServer reads the options every receiver shares from a block;
// other options are passed to more, which returns false if it does not
// know them either.
func (s *Server) UnmarshalServer(d *caddyfile.Dispenser, name string, more func(opt string) (bool, error)) error {
	s.Listen = append(s.Listen, d.RemainingArgs()...)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		switch opt {
		case "listen":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			s.Listen = append(s.Listen, args...)
			continue
		case "proxy_protocol":
			if d.NextArg() {
				return d.ArgErr()
			}
			s.ProxyProtocol = new(ProxyProtocol)
			for n := d.Nesting(); d.NextBlock(n); {
				switch d.Val() {
				case "allow":
					s.ProxyProtocol.Allow = append(s.ProxyProtocol.Allow, d.RemainingArgs()...)
				case "timeout":
					if !d.NextArg() {
						return d.ArgErr()
					}
					dur, err := caddy.ParseDuration(d.Val())
					if err != nil {
						return d.Errf("proxy_protocol timeout: %v", err)
					}
					s.ProxyProtocol.Timeout = caddy.Duration(dur)
				default:
					return d.Errf("unrecognized proxy_protocol option '%s'", d.Val())
				}
			}
			continue
		case "tls":
			if d.NextArg() {
				return d.ArgErr()
			}
			s.TLS = new(TLS)
			for n := d.Nesting(); d.NextBlock(n); {
				sub := d.Val()
				args := d.RemainingArgs()
				switch {
				case sub == "certificate" && len(args) == 2:
					s.TLS.Certificate, s.TLS.Key = args[0], args[1]
				case sub == "client_ca" && len(args) == 1:
					s.TLS.ClientCA = args[0]
				default:
					return d.Errf("tls: want `certificate <cert> <key>` or `client_ca <file>`, got '%s'", sub)
				}
			}
			continue
		}
		if ok, err := more(opt); err != nil {
			return err
		} else if ok {
			continue
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		val := d.Val()
		switch opt {
		case "app":
			s.App = val
		case "max_message_size":
			n, err := size.Parse(val, 16<<20)
			if err != nil || n == 0 {
				return d.Errf("max_message_size: want 1B to 16MiB, got %q", val)
			}
			s.MaxMessageSize = int(n)
		case "max_connections", "max_connections_per_peer":
			n, err := parsePositive(val)
			if err != nil {
				return d.Errf("%s: %v", opt, err)
			}
			if opt == "max_connections" {
				s.MaxConnections = n
			} else {
				s.MaxConnectionsPerPeer = n
			}
		case "read_timeout", "idle_timeout":
			dur, err := caddy.ParseDuration(val)
			if err != nil || dur <= 0 {
				return d.Errf("%s: want a positive duration, got %q", opt, val)
			}
			if opt == "read_timeout" {
				s.ReadTimeout = caddy.Duration(dur)
			} else {
				s.IdleTimeout = caddy.Duration(dur)
			}
		default:
			return d.Errf("unrecognized %s option '%s'", name, opt)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

func parsePositive(s string) (int, error) {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive integer, got %q", s)
	}
	return n, nil
}

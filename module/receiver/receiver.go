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
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	proxyproto "github.com/pires/go-proxyproto"
	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/internal/tlsconfig"
	"github.com/caddy-applog/caddy-applog/module/intake"
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
	tlsApp    *caddytls.TLS // managing TLS.CertificateAutomate, if set
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

// TLS configures `tls/` listeners: the server's certificate from files
// or from Caddy's tls app, and, for mutual TLS, the CAs clients'
// certificates must be signed by.
type TLS struct {
	// PEM files of the server's certificate and key, read at start.
	Certificate string `json:"certificate,omitempty"`
	Key         string `json:"key,omitempty"`

	// Instead of files, the name of a certificate Caddy's tls app
	// manages: obtained at start by the automation policy for that name
	// (ACME, or the internal issuer of `tls internal`) and renewed
	// without a restart, each handshake taking the current one.
	CertificateAutomate string `json:"certificate_automate,omitempty"`

	// A PEM file of CAs: when set, clients must present a certificate
	// signed by one of them (mutual TLS).
	ClientCA string `json:"client_ca,omitempty"`

	// Instead of a file, where the client CAs come from: one of Caddy's
	// tls.ca_pool.source modules, as its client_auth trust_pool takes
	// (pki_root and pki_intermediate for Caddy's own CA, file, inline,
	// storage, http). Clients must then present a certificate it trusts.
	TrustPoolRaw json.RawMessage `json:"trust_pool,omitempty" caddy:"namespace=tls.ca_pool.source inline_key=provider"`
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
		cfg, tlsApp, err := s.TLS.build(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		s.tlsConfig, s.tlsApp = cfg, tlsApp
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

// build makes the listeners' settings; an automated certificate's tls
// app is returned, to be asked at Start to manage it.
func (t *TLS) build(ctx caddy.Context) (*tls.Config, *caddytls.TLS, error) {
	if t == nil || (t.Certificate == "" && t.Key == "" && t.CertificateAutomate == "") {
		return nil, nil, errors.New("tls/ addresses need tls { certificate <cert> <key> } or tls { certificate_automate <name> }")
	}
	if t.CertificateAutomate != "" && (t.Certificate != "" || t.Key != "") {
		return nil, nil, errors.New("tls: use certificate or certificate_automate, not both")
	}
	if t.ClientCA != "" && len(t.TrustPoolRaw) > 0 {
		return nil, nil, errors.New("tls: use client_ca or trust_pool, not both")
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// TLS 1.3 session tickets are sent after the handshake; a log
		// sender only writes, never reads them, so its kernel answers
		// its own close with a reset that discards what it had sent
		// but we had not yet read (loggen lost up to half its messages).
		SessionTicketsDisabled: true,
	}
	var tlsApp *caddytls.TLS
	if t.CertificateAutomate != "" {
		app, err := ctx.App("tls")
		if err != nil {
			return nil, nil, fmt.Errorf("tls certificate_automate: getting the tls app: %w", err)
		}
		tlsApp = app.(*caddytls.TLS)
		cfg.GetCertificate = tlsconfig.ServerCertificate(t.CertificateAutomate)
	} else {
		if t.Certificate == "" || t.Key == "" {
			return nil, nil, errors.New("tls certificate: want a certificate file and a key file")
		}
		cert, err := tls.LoadX509KeyPair(t.Certificate, t.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("tls certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	switch {
	case t.ClientCA != "":
		pool, err := tlsconfig.CertPool(t.ClientCA)
		if err != nil {
			return nil, nil, fmt.Errorf("tls client_ca: %w", err)
		}
		cfg.ClientCAs = pool
	case len(t.TrustPoolRaw) > 0:
		mod, err := ctx.LoadModule(t, "TrustPoolRaw")
		if err != nil {
			return nil, nil, fmt.Errorf("tls trust_pool: %w", err)
		}
		ca, ok := mod.(caddytls.CA)
		if !ok {
			return nil, nil, fmt.Errorf("tls trust_pool: %T is not a certificate pool provider", mod)
		}
		if cfg.ClientCAs = ca.CertPool(); cfg.ClientCAs == nil {
			return nil, nil, errors.New("tls trust_pool: the source gave no certificates")
		}
	}
	if cfg.ClientCAs != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, tlsApp, nil
}

// Start listens and serves, submitting records to in.
func (s *Server) Start(in intake.Intake) error {
	if s.App != "" {
		in.DeclareApp(s.App)
	}
	// As Caddy's http app does for its sites, at start: the tls app of
	// this config then obtains the certificate, or loads it from
	// storage, and renews it; handshakes before it is there fail and
	// the sender retries.
	if s.tlsApp != nil {
		if err := tlsconfig.Manage(s.tlsApp, s.TLS.CertificateAutomate); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
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

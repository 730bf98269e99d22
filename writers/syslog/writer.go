package syslog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/internal/oneline"
	"github.com/caddy-applog/caddy-applog/internal/size"
	"github.com/caddy-applog/caddy-applog/module/status"
)

func init() {
	caddy.RegisterModule(Writer{})
}

// Writer sends log entries to a syslog server over UDP, TCP or a Unix
// stream or datagram socket; by default to the local syslog daemon at
// `unixgram//dev/log`. Pair it with `format syslog` so that each entry
// carries a syslog header. For syslog over TLS, use the `tls` writer
// with `format syslog`.
//
// Entries wait in a bounded queue for one sender, so a slow or absent
// server never holds up requests; the sender reconnects with backoff
// and resends an entry whose write failed. Streams frame entries by
// octet counting or by a line feed; datagrams carry one entry each.
type Writer struct {
	// Where to send, in Caddy's network address form: udp/host:port,
	// tcp/host:port, unix//path or unixgram//path. Default: unixgram//dev/log.
	Address string `json:"address,omitempty"`

	// octet_counting (RFC 6587) or lf; streams only. Default: octet_counting.
	Framing string `json:"framing,omitempty"`

	// How long to wait for a connection. Default: 5s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// Load even if the server cannot be reached yet; entries queue until
	// it can. Default: false (an unreachable server fails the load).
	SoftStart bool `json:"soft_start,omitempty"`

	// The largest datagram sent, in bytes; longer entries are cut.
	// Default: 8192.
	MaxDatagram int `json:"max_datagram,omitempty"`

	// How many entries may wait to be sent. Default: 10000.
	Queue int `json:"queue,omitempty"`

	// How long a write waits for room in a full queue before the entry
	// is dropped and counted. Default: 100ms.
	BlockTimeout caddy.Duration `json:"block_timeout,omitempty"`

	network, addr string
}

// CaddyModule returns the Caddy module information.
func (Writer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.writers.syslog",
		New: func() caddy.Module { return new(Writer) },
	}
}

// Defaults.
const (
	defaultAddress      = "unixgram//dev/log"
	defaultMaxDatagram  = 8192
	defaultQueue        = 10000
	defaultBlockTimeout = 100 * time.Millisecond
	defaultDialTimeout  = 5 * time.Second
	minBackoff          = 100 * time.Millisecond
	maxBackoff          = 10 * time.Second
	closeTimeout        = 5 * time.Second
)

// Provision sets up the writer.
func (w *Writer) Provision(ctx caddy.Context) error {
	if w.Address == "" {
		w.Address = defaultAddress
	}
	if w.MaxDatagram == 0 {
		w.MaxDatagram = defaultMaxDatagram
	}
	if w.Queue == 0 {
		w.Queue = defaultQueue
	}
	if w.BlockTimeout == 0 {
		w.BlockTimeout = caddy.Duration(defaultBlockTimeout)
	}
	if w.DialTimeout == 0 {
		w.DialTimeout = caddy.Duration(defaultDialTimeout)
	}
	network, addr, err := parseAddress(w.Address)
	if err != nil {
		return err
	}
	w.network, w.addr = network, addr
	switch w.Framing {
	case "", "octet_counting", "lf":
	default:
		return fmt.Errorf("framing %q: want octet_counting or lf", w.Framing)
	}
	if w.MaxDatagram < 480 || w.MaxDatagram > 65507 {
		return fmt.Errorf("max_datagram %d: want 480 to 65507 bytes", w.MaxDatagram)
	}
	if w.Queue < 1 || w.BlockTimeout < 0 {
		return fmt.Errorf("queue must be positive and block_timeout not negative")
	}
	_, err = senders.AcquireUntil(ctx, w.WriterKey(), func() (*liveEntry, error) { return new(liveEntry), nil })
	return err
}

// parseAddress reads an address in Caddy's network address form
// (udp/host:port, tcp/host:port, unix//path or unixgram//path) and
// returns the network and the address to dial. The URL form this writer
// once took is refused with the address rewritten, and a tls address
// with the writer that sends over TLS, so that an old config says how
// to fix it.
func parseAddress(address string) (network, addr string, err error) {
	for _, prefix := range []string{"tls://", "tls/"} {
		if rest, ok := strings.CutPrefix(address, prefix); ok {
			return "", "", errTLSAddress(address, rest)
		}
	}
	if scheme, rest, ok := strings.Cut(address, "://"); ok && knownNetwork(scheme) {
		return "", "", fmt.Errorf("address %q: write it as %s/%s", address, scheme, rest)
	}
	network, _, ok := strings.Cut(address, "/")
	if !ok {
		return "", "", fmt.Errorf("address %q: want <network>/<host>:<port> or unix//<path>, such as udp/%s", address, address)
	}
	if !knownNetwork(network) {
		return "", "", fmt.Errorf("address %q: network must be udp, tcp, unix or unixgram (for TLS, use the tls writer)", address)
	}
	na, err := caddy.ParseNetworkAddress(address)
	if err != nil {
		return "", "", fmt.Errorf("address %q: %w", address, err)
	}
	if na.IsUnixNetwork() {
		if na.Host == "" || strings.Contains(na.Host, "|") {
			return "", "", fmt.Errorf("address %q: want %s//path/to/socket", address, network)
		}
		return network, na.Host, nil
	}
	if na.Host == "" || na.StartPort == 0 || na.PortRangeSize() != 1 {
		return "", "", fmt.Errorf("address %q: want %s/host:port, one port", address, network)
	}
	return network, na.JoinHostPort(0), nil
}

// errTLSAddress refuses a tls/ address: syslog over TLS is the tls
// writer's (with its spool and certificate reloading); this writer's own
// TLS mode, which had neither, is gone.
func errTLSAddress(address, hostPort string) error {
	return fmt.Errorf("address %q: the syslog writer does not send over TLS; use `output tls %s { ca ...; client_cert ... }` with `format syslog`", address, hostPort)
}

func knownNetwork(network string) bool {
	switch network {
	case "udp", "udp4", "udp6", "tcp", "tcp4", "tcp6", "unix", "unixgram":
		return true
	}
	return false
}

func (w Writer) String() string { return "syslog " + w.Address }

// WriterKey identifies the writer for Caddy's pool; it holds every option
// that changes behaviour, so a reload with new options opens a new one.
func (w Writer) WriterKey() string {
	opts, _ := json.Marshal(w)
	return "syslog:" + string(opts)
}

// datagram reports whether each entry goes as one datagram (udp, udp4,
// udp6, unixgram) rather than framed on a stream.
func (w Writer) datagram() bool {
	return strings.HasPrefix(w.network, "udp") || w.network == "unixgram"
}

// OpenWriter returns the writer Caddy's loggers write to. Unless
// soft_start is set, it first checks that the server can be reached.
func (w Writer) OpenWriter() (io.WriteCloser, error) {
	var conn net.Conn
	if !w.SoftStart {
		var err error
		conn, err = (&sender{w: w}).dial()
		if err != nil {
			return nil, fmt.Errorf("connecting to syslog server %s: %w (use soft_start to start anyway)", w.Address, err)
		}
	}
	h := &handle{w: w, key: w.WriterKey()}
	if e := h.entry(); e == nil || !e.start(w, conn) {
		if conn != nil {
			conn.Close()
		}
	}
	return h, nil
}

func newSender(w Writer, conn net.Conn) *sender {
	s := &sender{
		w:     w,
		conn:  conn,
		queue: make(chan []byte, w.Queue),
		done:  make(chan struct{}),
		ended: make(chan struct{}),
		meter: status.WriterMeter("syslog", w.Address),
	}
	go s.run()
	return s
}

// sender owns the connection; Write only queues.
type sender struct {
	w         Writer
	queue     chan []byte
	done      chan struct{} // closed by Close
	ended     chan struct{} // closed when run returns
	closeOnce sync.Once
	conn      net.Conn
	meter     *status.Writer

	// Writes hold mu for reading while they queue; Close sets closed
	// under it before it stops the sender, so no entry is queued after
	// run has drained the queue for the last time.
	mu     sync.RWMutex
	closed bool
}

// errSenderClosed is what Write returns once Close has begun.
var errSenderClosed = errors.New("syslog sender closed")

// Write queues a copy of p (zap reuses its buffer), waiting at most
// block_timeout for room.
func (s *sender) Write(p []byte) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errSenderClosed
	}
	msg := make([]byte, len(p))
	copy(msg, p)
	select {
	case s.queue <- msg:
		return len(p), nil
	default:
	}
	timer := time.NewTimer(time.Duration(s.w.BlockTimeout))
	defer timer.Stop()
	select {
	case s.queue <- msg:
		return len(p), nil
	case <-timer.C:
	case <-s.done:
	}
	s.meter.Dropped.Add(1)
	return 0, fmt.Errorf("syslog %s: queue full, entry dropped", s.w.Address)
}

// Close sends what is queued (for up to 5 seconds) and disconnects.
func (s *sender) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.closeOnce.Do(func() { close(s.done) })
	<-s.ended
	return nil
}

func (s *sender) dial() (net.Conn, error) {
	d := net.Dialer{Timeout: time.Duration(s.w.DialTimeout)}
	return d.Dial(s.w.network, s.w.addr)
}

func (s *sender) run() {
	defer close(s.ended)
	defer func() {
		if s.conn != nil {
			s.conn.Close()
		}
	}()
	backoff := minBackoff
	var closing <-chan time.Time
	for {
		var msg []byte
		select {
		case msg = <-s.queue:
		case <-closing:
			s.meter.Dropped.Add(int64(len(s.queue)))
			return
		case <-s.done:
			if closing == nil {
				closing = time.After(closeTimeout)
			}
			select {
			case msg = <-s.queue:
			default:
				return // nothing left
			}
		}
		// Send msg, reconnecting until it goes or we must stop.
		for {
			err := s.send(msg)
			if err == nil {
				backoff = minBackoff
				break
			}
			s.meter.Errors.Add(1)
			if s.conn != nil {
				s.conn.Close()
				s.conn = nil
			}
			if s.w.datagram() && !errors.Is(err, errNotConnected) {
				break // a datagram is not worth resending
			}
			// Once closing, done stays closed: wait on the deadline only,
			// or this would spin.
			done := s.done
			if closing != nil {
				done = nil
			}
			wait := time.NewTimer(backoff)
			select {
			case <-wait.C:
			case <-closing:
				wait.Stop()
				s.meter.Dropped.Add(int64(1 + len(s.queue)))
				return
			case <-done:
				wait.Stop()
				closing = time.After(closeTimeout)
			}
			backoff = min(backoff*2, maxBackoff)
		}
	}
}

var errNotConnected = errors.New("not connected")

// send writes one framed entry on the connection, dialling if needed.
func (s *sender) send(msg []byte) error {
	if s.conn != nil && !s.w.datagram() && peerClosed(s.conn) {
		s.conn.Close()
		s.conn = nil
	}
	if s.conn == nil {
		conn, err := s.dial()
		if err != nil {
			return fmt.Errorf("%w: %v", errNotConnected, err)
		}
		s.conn = conn
	}
	// The encoder ends entries with a newline; framing replaces it.
	for len(msg) > 0 && (msg[len(msg)-1] == '\n' || msg[len(msg)-1] == '\r') {
		msg = msg[:len(msg)-1]
	}
	var frame []byte
	switch {
	case s.w.datagram():
		if len(msg) > s.w.MaxDatagram {
			msg = msg[:s.w.MaxDatagram]
			s.meter.Truncated.Add(1)
		}
		frame = msg
	case s.w.Framing == "lf":
		// A line break would end the frame early and start a message the
		// record chose: escape what an encoder that is not this
		// project's (console) left raw, as the syslog encoder does.
		frame = append(oneline.Escape(msg), '\n')
	default:
		frame = append(strconv.AppendInt(make([]byte, 0, len(msg)+8), int64(len(msg)), 10), ' ')
		frame = append(frame, msg...)
	}
	if err := s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := s.conn.Write(frame); err != nil {
		return err
	}
	s.meter.Entries.Add(1)
	s.meter.Bytes.Add(int64(len(frame)))
	return nil
}

// UnmarshalCaddyfile sets up the writer from Caddyfile tokens:
//
//	output syslog [<network>/<address>] {
//		framing       octet_counting|lf
//		dial_timeout  <duration>
//		soft_start
//		max_datagram  <size>
//		queue         <n>
//		block_timeout <duration>
//	}
func (w *Writer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume writer name
	if d.NextArg() {
		w.Address = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "soft_start":
			w.SoftStart = true
		case "tls":
			// This writer's TLS mode is gone: say which writer has it.
			return d.Errf("tls: the syslog writer does not send over TLS; use `output tls <host:port> { ca ...; client_cert ... }` with `format syslog`")
		default:
			if !d.NextArg() {
				return d.ArgErr()
			}
			val := d.Val()
			switch opt {
			case "framing":
				w.Framing = val
			case "dial_timeout", "block_timeout":
				dur, err := caddy.ParseDuration(val)
				if err != nil {
					return d.Errf("%s: %v", opt, err)
				}
				if opt == "dial_timeout" {
					w.DialTimeout = caddy.Duration(dur)
				} else {
					w.BlockTimeout = caddy.Duration(dur)
				}
			case "max_datagram":
				n, err := size.Parse(val, 65507)
				if err != nil {
					return d.Errf("max_datagram: invalid size %q", val)
				}
				w.MaxDatagram = int(n)
			case "queue":
				n, err := strconv.Atoi(val)
				if err != nil || n < 1 {
					return d.Errf("queue: want a positive integer, got %q", val)
				}
				w.Queue = n
			default:
				return d.Errf("unrecognized syslog writer option '%s'", opt)
			}
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	if w.Address != "" {
		if _, _, err := parseAddress(w.Address); err != nil {
			return d.Err(err.Error())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.WriterOpener    = (*Writer)(nil)
	_ caddy.Provisioner     = (*Writer)(nil)
	_ caddyfile.Unmarshaler = (*Writer)(nil)
)

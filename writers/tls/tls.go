// Package tls provides the log writer caddy.logging.writers.tls: log
// entries forwarded to an aggregator over mutual TLS, through an
// optional disk spool so that nothing is lost while it is unreachable.
// The spool, the hub shared across reloads and the sender are
// internal/forward's; this package is the module and its transport
// (session.go: framing, the TLS connection, what counts as
// acknowledged).
package tls

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/internal/forward"
	"github.com/caddy-applog/caddy-applog/internal/tlsconfig"
)

func init() {
	caddy.RegisterModule(Writer{})
}

// Writer forwards log entries over TLS 1.2 or newer to an aggregator
// (rsyslog, syslog-ng, Vector, another Caddy with the applog syslog
// receiver), verifying the server and presenting a client certificate.
// With `format syslog` it is syslog over TLS (RFC 5425). Unlike Caddy's
// net writer it does not give entries up while the aggregator is down:
// with a `spool`, each entry is on disk before the write returns and
// leaves it only once the aggregator's TCP stack has acknowledged it, in
// order, at least once, across reloads, restarts and crashes.
type Writer struct {
	// The aggregator, as host:port. Required.
	Address string `json:"address,omitempty"`

	// How the server is verified and which client certificate is
	// presented: ca, client_certificate and client_key,
	// client_certificate_automate, server_name.
	tlsconfig.Client

	// octet_counting or lf. Default: octet_counting.
	Framing string `json:"framing,omitempty"`

	// How long to wait for a connection and TLS handshake. Default: 10s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// Where entries wait until delivered (spool, buffer) and the waits
	// between connection attempts (backoff_min, backoff_max).
	forward.Options

	hub *forward.Hub
	cfg *forward.Config
}

// CaddyModule returns the Caddy module information.
func (Writer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.writers.tls",
		New: func() caddy.Module { return new(Writer) },
	}
}

// Defaults.
const (
	defaultDialTimeout = 10 * time.Second
)

// Provision checks the settings, loads the certificates, and opens (or
// joins) the writer's queue and sender for the config being loaded.
func (w *Writer) Provision(ctx caddy.Context) error {
	if w.DialTimeout == 0 {
		w.DialTimeout = caddy.Duration(defaultDialTimeout)
	}
	if err := w.Options.Provision(); err != nil {
		return fmt.Errorf("tls writer: %w", err)
	}
	if err := w.Validate(); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(w.Address)
	cfg, err := w.Client.Config(host)
	if err != nil {
		return fmt.Errorf("tls writer: %w", err)
	}
	connKey, _ := json.Marshal([]any{w.Address, w.CA, w.ClientCertificate, w.ClientKey, w.ClientCertificateAutomate, w.ServerName, w.Framing, w.DialTimeout, w.BackoffMin, w.BackoffMax})
	w.cfg = &forward.Config{
		Key: string(connKey),
		Transport: &transport{
			address:     w.Address,
			tlsConfig:   cfg,
			lf:          w.Framing == "lf",
			dialTimeout: time.Duration(w.DialTimeout),
		},
		Name: w.Address,
		Log:  ctx.Logger().With(zap.String("address", w.Address)),
	}
	key := w.Options.Apply(w.cfg)
	// The lease ends with the config's context (ctx.Context: a
	// caddy.Context value cannot be compared, the context inside can).
	w.hub, err = forward.Acquire(ctx.Context, "tls", key, w.cfg)
	return err
}

// Validate checks the writer's settings.
func (w *Writer) Validate() error {
	if w.Address == "" {
		return errors.New("tls writer: address is required (host:port)")
	}
	if _, port, err := net.SplitHostPort(w.Address); err != nil || port == "" {
		return fmt.Errorf("tls writer: address %q: want host:port", w.Address)
	}
	switch w.Framing {
	case "", "octet_counting", "lf":
	default:
		return fmt.Errorf("tls writer: framing %q: want octet_counting or lf", w.Framing)
	}
	if err := w.Client.Validate(); err != nil {
		return fmt.Errorf("tls writer: %w", err)
	}
	if w.DialTimeout < 0 {
		return errors.New("tls writer: dial_timeout must not be negative")
	}
	if err := w.Options.Validate(); err != nil {
		return fmt.Errorf("tls writer: %w", err)
	}
	return nil
}

func (w *Writer) String() string { return "tls " + w.Address }

// WriterKey identifies the writer for Caddy's pool. It holds every
// option, so a reload with new options gets a new writer; both write
// into the same queue (see internal/forward's hub.go).
func (w *Writer) WriterKey() string {
	opts, _ := json.Marshal(w)
	return "applog-tls:" + string(opts)
}

// OpenWriter returns the writer's end of its queue.
func (w *Writer) OpenWriter() (io.WriteCloser, error) {
	if w.hub == nil {
		return nil, errors.New("tls writer: not provisioned")
	}
	return w.hub.Writer(w.cfg), nil
}

// UnmarshalCaddyfile sets up the writer from Caddyfile tokens:
//
//	output tls <host:port> {
//		ca                   <pem-file>
//		client_cert          <cert-file> <key-file>
//		client_cert_automate <name>
//		server_name          <name>
//		framing              octet_counting|lf
//		spool <folder> {
//			max_size <size>
//			on_full  block|drop_oldest|drop_newest
//			fsync    every|<duration>
//		}
//		buffer               <entries>
//		dial_timeout         <duration>
//		backoff              <min> [<max>]
//	}
func (w *Writer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume writer name
	if !d.NextArg() {
		return d.ArgErr()
	}
	w.Address = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		args := d.RemainingArgs()
		if ok, err := w.Options.UnmarshalShared(d, opt, args, &w.Client); ok {
			if err != nil {
				return err
			}
			continue
		}
		if len(args) != 1 {
			if opt != "framing" && opt != "dial_timeout" {
				return d.Errf("unrecognized tls writer option '%s'", opt)
			}
			return d.ArgErr()
		}
		switch opt {
		case "framing":
			w.Framing = args[0]
		case "dial_timeout":
			dur, err := caddy.ParseDuration(args[0])
			if err != nil {
				return d.Errf("dial_timeout: %v", err)
			}
			w.DialTimeout = caddy.Duration(dur)
		default:
			return d.Errf("unrecognized tls writer option '%s'", opt)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.WriterOpener    = (*Writer)(nil)
	_ caddy.Provisioner     = (*Writer)(nil)
	_ caddy.Validator       = (*Writer)(nil)
	_ caddyfile.Unmarshaler = (*Writer)(nil)
)

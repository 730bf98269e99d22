// Package syslog provides the syslog receiver of the applog app.
package syslog

import (
	"bufio"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/module/decoders/syslogmsg"
	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/receiver"
)

func init() {
	caddy.RegisterModule(Syslog{})
}

// Syslog receives syslog messages on UDP, TCP, TLS and Unix sockets:
// RFC 5424, RFC 3164, and the header-less `<PRI>ident: message` of
// Python's SysLogHandler, so SysLogHandler and gunicorn's `--log-syslog`
// work unchanged. The program name (APP-NAME, TAG or ident) gives the app
// and facility: `gunicorn.myproj.access` is app `gunicorn`, facility
// `myproj.access`. A message that names no program, or whose header does
// not parse, is kept whole under `fallback_app`, never dropped. A
// record's host is its peer, never the hostname the message claims.
type Syslog struct {
	receiver.Server

	// How messages are separated on stream transports: `octet` (RFC 6587
	// octet counting), `lf`, `nul` (SysLogHandler, gunicorn), or `auto`,
	// decided once per connection from its first message. Default: auto.
	Framing string `json:"framing,omitempty"`

	// The app of messages that name none (no program name, or a header
	// that does not parse) when `app` is not set. Default: syslog.
	FallbackApp string `json:"fallback_app,omitempty"`

	framing syslogmsg.Framing
}

// CaddyModule returns the Caddy module information.
func (Syslog) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "applog.receivers.syslog",
		New: func() caddy.Module { return new(Syslog) },
	}
}

// DefaultFallbackApp is the app of messages that name none.
const DefaultFallbackApp = "syslog"

// Provision sets up the receiver.
func (s *Syslog) Provision(ctx caddy.Context) error {
	f, err := syslogmsg.ParseFraming(s.Framing)
	if err != nil {
		return fmt.Errorf("syslog: %w", err)
	}
	s.framing = f
	if s.FallbackApp == "" {
		s.FallbackApp = DefaultFallbackApp
	}
	if err := intake.CheckApp(s.FallbackApp); err != nil {
		return fmt.Errorf("syslog: fallback_app %q: %w", s.FallbackApp, err)
	}
	return s.Server.Provision(ctx, "syslog", protocol{app: s.App, fallback: s.FallbackApp, framing: f})
}

// Start declares the fallback app, so that the records kept under it
// are accepted, and starts listening.
func (s *Syslog) Start(in intake.Intake) error {
	if s.App == "" {
		in.DeclareApp(s.FallbackApp)
	}
	return s.Server.Start(in)
}

type protocol struct {
	app, fallback string
	framing       syslogmsg.Framing
}

func (pr protocol) Split(maxSize int) bufio.SplitFunc {
	return syslogmsg.NewSplitter(pr.framing, maxSize)
}

func (protocol) Datagram(p []byte, maxSize int) ([]byte, error) {
	p, err := syslogmsg.DatagramMessage(p)
	if err != nil {
		return nil, err
	}
	if len(p) > maxSize {
		return nil, fmt.Errorf("datagram of %d bytes exceeds max_message_size %d", len(p), maxSize)
	}
	return p, nil
}

func (pr protocol) Decode(msg []byte, now time.Time, attrs []intake.Attr) (intake.Record, error) {
	// In place: the read loop submits the record before it reads the
	// next message into msg's buffer, and Submit copies what it keeps.
	m, err := syslogmsg.ParseInPlace(msg, now, time.Local)
	if err != nil {
		var ok bool
		if m, ok = syslogmsg.Salvage(msg, true); !ok {
			return intake.Record{}, err
		}
	}
	rec := syslogmsg.ToRecordReusing(m, now, attrs)
	rec.Wire = len(msg) + 1 // with its terminator or length prefix (a datagram may have none: one byte over)
	if err != nil {
		rec.Attrs = append(rec.Attrs, intake.Attr{Key: "syslog_error", Value: intake.String(err.Error())})
	}
	switch {
	case pr.app != "":
		rec.App, rec.Facility = pr.app, intake.FacilityFromLogger(m.AppName)
	case rec.App == "":
		rec.App, rec.Facility = pr.fallback, intake.FacilityFromLogger(m.AppName)
	}
	return rec, nil
}

// UnmarshalCaddyfile sets up the receiver from Caddyfile tokens (inside
// the applog global option); the options are those of python_socket,
// and framing and fallback_app:
//
//	syslog <address...> {
//		listen           <address...>
//		app              <app>
//		proxy_protocol {
//			allow   <cidrs...>
//			timeout <duration>
//		}
//		tls {
//			certificate          <cert-file> <key-file>
//			certificate_automate <name>
//			client_ca            <file>
//			trust_pool           <source> [<options...>]
//		}
//		framing          octet|lf|nul|auto
//		fallback_app     <app>
//		max_message_size <size>
//		max_connections  <n>
//		max_connections_per_peer <n>
//		read_timeout     <duration>
//		idle_timeout     <duration>
//	}
func (s *Syslog) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume receiver name
	return s.UnmarshalServer(d, "syslog", func(opt string) (bool, error) {
		switch opt {
		case "framing", "fallback_app":
		default:
			return false, nil
		}
		if !d.NextArg() {
			return true, d.ArgErr()
		}
		val := d.Val()
		if d.NextArg() {
			return true, d.ArgErr()
		}
		if opt == "framing" {
			if _, err := syslogmsg.ParseFraming(val); err != nil {
				return true, d.Errf("%v", err)
			}
			s.Framing = val
		} else {
			s.FallbackApp = val
		}
		return true, nil
	})
}

// Interface guards
var (
	_ caddy.Provisioner     = (*Syslog)(nil)
	_ intake.Receiver       = (*Syslog)(nil)
	_ caddyfile.Unmarshaler = (*Syslog)(nil)
)

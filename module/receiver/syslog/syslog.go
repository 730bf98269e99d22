// Package syslog provides the syslog receiver of the applog app.
package syslog

import (
	"bufio"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/receiver"
	"github.com/caddy-applog/caddy-applog/module/syslogmsg"
)

func init() {
	caddy.RegisterModule(Syslog{})
}

// Syslog receives syslog messages over UDP, TCP, TLS or Unix sockets:
// RFC 5424, RFC 3164, and the header-less `<PRI>ident: message` that
// Python's `logging.handlers.SysLogHandler` sends, so
// `gunicorn --log-syslog --log-syslog-to udp://...` and SysLogHandler
// work unchanged.
//
// On streams, `framing` says how messages are separated; text inside a
// message never ends it, starts another or changes the framing. A
// datagram is one message; a trailing NUL or newline is dropped, and a
// datagram that starts with an octet count (`LEN SP MSG`, as syslog-ng's
// `loggen` sends in RFC 5424 mode) is accepted when the count equals the
// length of the rest of the datagram, with or without its trailing line
// break, and refused otherwise.
//
// The program name (RFC 5424 APP-NAME, RFC 3164 TAG, or SysLogHandler's
// ident) gives the app and facility: its first dot-separated part is the
// app and the rest the facility, so `gunicorn.myproj.access` is app
// `gunicorn`, facility `myproj.access`, and `myapp` is app `myapp`. With
// `app` set on the receiver, every record belongs to that app and the
// whole program name is its facility. An RFC 3164 TAG is read as rsyslog
// and syslog-ng read it: up to a space, `[` or `:`, then an optional
// `[pid]` and an optional colon (`vm webapp text` is program `webapp`).
// Timestamps without a zone (`2026-12-04T20:22:39`, as `loggen`
// writes them, and every BSD timestamp) are in Caddy's local time zone.
//
// No message is dropped for what its header lacks: a message that names
// no program (Python's SysLogHandler with its default empty ident), or
// whose header cannot be parsed, is kept whole, as its text, under
// `app` when set, else under `fallback_app` (which the receiver declares,
// so its records are accepted and counted in that app's facility
// counters); an unparsable one gets a `syslog_error` attribute saying
// why, and the PRI it had (user.notice without one). Only an empty
// message is refused, besides what the transport refuses: a message over
// max_message_size, a datagram whose octet count is not its length.
//
// The severity gives the level (notice is 25 on Python's scale), the
// message's timestamp the time (the arrival time when it has none), and
// the facility keyword, severity, claimed hostname, procid, msgid and
// structured data are attributes. The record's host is the peer (or the
// PROXY protocol's client), never the hostname the message claims.
type Syslog struct {
	receiver.Server

	// How messages are separated on stream transports (TCP, TLS, Unix
	// stream sockets): `octet` (RFC 6587 octet counting, `LEN SP MSG`,
	// as RFC 5425 and syslog-ng's syslog() driver use), `lf` (a message
	// ends at LF: rsyslog's and syslog-ng's non-transparent framing,
	// or lines from a plain client), `nul` (a message ends at NUL:
	// Python's SysLogHandler and gunicorn over TCP, whose messages keep
	// their line breaks), or `auto`, which decides once per connection
	// from its first message: a leading octet count means `octet`; else
	// a NUL before the first line break means `nul`; else a first
	// message with an RFC 5424 header or an RFC 3164 timestamp, or not
	// starting with `<`, means `lf`, and one without a header
	// (SysLogHandler's `<PRI>ident: text`) `nul`. What `auto` cannot
	// tell apart is a first message that has a line break and whose
	// own text, written right after `<PRI>` (SysLogHandler with its
	// default empty ident), looks like a syslog header: that connection
	// is read as `lf`. Set the framing when you know the senders: `nul`
	// for SysLogHandler and gunicorn, `lf` or `octet` for rsyslog and
	// syslog-ng, `lf` for `<PRI>text` lines without a header (which
	// `auto` reads as `nul`). Default: auto.
	Framing string `json:"framing,omitempty"`

	// The app of messages that name none, when `app` is not set: a
	// message without a program name, or whose header cannot be parsed.
	// Default: syslog.
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
//			certificate <cert-file> <key-file>
//			client_ca   <file>
//		}
//		framing          octet|lf|nul|auto
//		fallback_app     <app>
//		max_message_size <size>
//		max_connections  <n>
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

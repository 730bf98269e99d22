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
// On streams, framing is detected per message: a leading digit means
// octet counting (`LEN SP MSG`, RFC 6587 and 5425), `<` a message ended
// by LF, CRLF or NUL (SysLogHandler over TCP ends each message with a NUL
// and nothing else). A datagram is one message; a trailing NUL or newline
// is dropped.
//
// The program name (RFC 5424 APP-NAME, RFC 3164 TAG, or SysLogHandler's
// ident) gives the app and facility: its first dot-separated part is the
// app and the rest the facility, so `gunicorn.myproj.access` is app
// `gunicorn`, facility `myproj.access`, and `myapp` is app `myapp`. With
// `app` set on the receiver, every record belongs to that app and the
// whole program name is its facility. The severity gives the level
// (notice is 25 on Python's scale), the message's timestamp the time (the
// arrival time when it has none), and the facility keyword, severity,
// claimed hostname, procid, msgid and structured data are attributes.
// The record's host is the peer (or the PROXY protocol's client), never
// the hostname the message claims.
type Syslog struct {
	receiver.Server
}

// CaddyModule returns the Caddy module information.
func (Syslog) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "applog.receivers.syslog",
		New: func() caddy.Module { return new(Syslog) },
	}
}

// Provision sets up the receiver.
func (s *Syslog) Provision(ctx caddy.Context) error {
	return s.Server.Provision(ctx, "syslog", protocol{app: s.App})
}

type protocol struct{ app string }

func (protocol) Split(maxSize int) bufio.SplitFunc { return syslogmsg.SplitFrames(maxSize) }

func (protocol) Datagram(p []byte, maxSize int) ([]byte, error) {
	for len(p) > 0 && (p[len(p)-1] == 0 || p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
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
		return intake.Record{}, err
	}
	rec := syslogmsg.ToRecordReusing(m, now, attrs)
	rec.Wire = len(msg) + 1 // with its terminator or length prefix (a datagram may have none: one byte over)
	if pr.app != "" {
		rec.App, rec.Facility = pr.app, intake.FacilityFromLogger(m.AppName)
	}
	return rec, nil
}

// UnmarshalCaddyfile sets up the receiver from Caddyfile tokens (inside
// the applog global option); the options are those of python_socket:
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
//		max_message_size <size>
//		max_connections  <n>
//		read_timeout     <duration>
//		idle_timeout     <duration>
//	}
func (s *Syslog) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume receiver name
	return s.UnmarshalServer(d, "syslog", func(string) (bool, error) { return false, nil })
}

// Interface guards
var (
	_ caddy.Provisioner     = (*Syslog)(nil)
	_ intake.Receiver       = (*Syslog)(nil)
	_ caddyfile.Unmarshaler = (*Syslog)(nil)
)

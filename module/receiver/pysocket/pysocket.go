// Package pysocket provides the python_socket receiver: records sent by
// Python's logging.handlers.SocketHandler (TCP) and DatagramHandler (UDP),
// unchanged.
package pysocket

import (
	"bufio"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/module/decoders/pylog"
	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/receiver"
)

func init() {
	caddy.RegisterModule(PythonSocket{})
}

// PythonSocket receives the records of Python's
// `logging.handlers.SocketHandler` on `tcp/` or `tls/` addresses and
// `DatagramHandler` on `udp/`, unchanged. Their pickles are read by a
// decoder that builds only plain values: nothing is ever imported,
// instantiated or run. A record's app is the receiver's `app`, else the
// record's `app` attribute; its facility is its `facility` attribute,
// else its logger name.
type PythonSocket struct {
	receiver.Server
}

// CaddyModule returns the Caddy module information.
func (PythonSocket) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "applog.receivers.python_socket",
		New: func() caddy.Module { return new(PythonSocket) },
	}
}

// Provision sets up the receiver.
func (p *PythonSocket) Provision(ctx caddy.Context) error {
	return p.Server.Provision(ctx, "python_socket", protocol{})
}

// protocol is SocketHandler's wire format.
type protocol struct{}

func (protocol) Split(maxSize int) bufio.SplitFunc { return pylog.SplitSocketFrames(maxSize) }

func (protocol) Datagram(p []byte, maxSize int) ([]byte, error) {
	return pylog.DatagramPayload(p, maxSize)
}

func (protocol) Decode(msg []byte, now time.Time, _ []intake.Attr) (intake.Record, error) {
	v, err := pylog.DecodePickle(msg, pylog.PickleLimits{MaxBytes: len(msg)})
	if err != nil {
		return intake.Record{}, err
	}
	rec, err := pylog.FromPickle(v, now)
	if err != nil {
		return rec, err
	}
	// The routing keys, when a record carries them as extra attributes.
	kept := rec.Attrs[:0]
	for _, a := range rec.Attrs {
		switch {
		case a.Key == "app" && a.Value.Kind == intake.KindString && rec.App == "":
			rec.App = a.Value.Str
		case a.Key == "facility" && a.Value.Kind == intake.KindString && rec.Facility == "":
			rec.Facility = intake.FacilityFromLogger(a.Value.Str)
		default:
			kept = append(kept, a)
		}
	}
	rec.Attrs = kept
	rec.Wire = len(msg) + 4 // the frame or datagram, with its length prefix
	return rec, nil
}

// UnmarshalCaddyfile sets up the receiver from Caddyfile tokens (inside
// the applog global option):
//
//	python_socket <address...> {
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
//		max_message_size <size>
//		max_connections  <n>
//		max_connections_per_peer <n>
//		read_timeout     <duration>
//		idle_timeout     <duration>
//	}
func (p *PythonSocket) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume receiver name
	return p.UnmarshalServer(d, "python_socket", func(string) (bool, error) { return false, nil })
}

// Interface guards
var (
	_ caddy.Provisioner     = (*PythonSocket)(nil)
	_ intake.Receiver       = (*PythonSocket)(nil)
	_ caddyfile.Unmarshaler = (*PythonSocket)(nil)
)

// Package syslog provides caddy-applog's syslog output: an encoder that
// puts RFC 5424 or RFC 3164 headers on any other encoder's output, and a
// writer that sends entries to a syslog server over UDP, TCP or a Unix
// socket. Syslog over TLS is the tls writer's job.
package syslog

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/logging"
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-applog/caddy-applog/internal/nested"
	"github.com/caddy-applog/caddy-applog/internal/oneline"
)

func init() {
	caddy.RegisterModule(Encoder{})
}

// Encoder puts an RFC 5424 (default) or RFC 3164 syslog header in front
// of another encoder's output (default json), with the facility
// configured here and a severity computed from each entry's level, since
// writers never see it. APP-NAME and HOSTNAME default to the record's app
// and origin host, so a syslog server files relayed records under their
// source. Each entry is kept to one line whatever the wrapped encoder
// wrote. Pair it with the syslog or tls writer, or any other.
type Encoder struct {
	zapcore.Encoder `json:"-"`

	// The encoder that renders the message part. Default: json.
	WrappedRaw json.RawMessage `json:"wrap,omitempty" caddy:"namespace=caddy.logging.encoders inline_key=format"`

	// The header standard: rfc5424 or rfc3164. Default: rfc5424. (Not
	// "format": Caddy keeps the encoder's module name under that key.)
	RFC string `json:"rfc,omitempty"`

	// The syslog facility: kern, user, mail, daemon, ..., local0 to
	// local7. Default: user.
	Facility string `json:"facility,omitempty"`

	// A fixed HOSTNAME. Default: the record's host, else this machine's name.
	Hostname string `json:"hostname,omitempty"`

	// A fixed APP-NAME. Default: the record's app, else "caddy".
	AppName string `json:"app_name,omitempty"`

	// A fixed PROCID. Default: Caddy's process ID.
	ProcID string `json:"procid,omitempty"`

	// The MSGID (rfc5424 only). Default: "-".
	MsgID string `json:"msgid,omitempty"`

	// One or more structured data elements, verbatim (rfc5424 only), for
	// example `[origin ip="192.0.2.1"]`. Default: "-".
	StructuredData string `json:"structured_data,omitempty"`

	facility  int
	localHost string
	procID    string
}

// CaddyModule returns the Caddy module information.
func (Encoder) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.encoders.syslog",
		New: func() caddy.Module { return new(Encoder) },
	}
}

// facilities are the syslog facility codes of RFC 5424.
var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
	"solaris-cron": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// Provision sets up the encoder.
func (e *Encoder) Provision(ctx caddy.Context) error {
	if e.WrappedRaw == nil {
		enc := new(logging.JSONEncoder)
		if err := enc.Provision(ctx); err != nil {
			return fmt.Errorf("provisioning default json encoder: %w", err)
		}
		e.Encoder = enc
	} else {
		e.WrappedRaw = oneline.Uncolor(e.WrappedRaw)
		val, err := ctx.LoadModule(e, "WrappedRaw")
		if err != nil {
			return fmt.Errorf("loading wrapped encoder: %w", err)
		}
		e.Encoder = val.(zapcore.Encoder)
	}
	return e.setup()
}

// setup validates and resolves everything but the wrapped encoder.
func (e *Encoder) setup() error {
	switch e.RFC {
	case "", "rfc5424", "rfc3164":
	default:
		return fmt.Errorf("%q: want rfc5424 or rfc3164", e.RFC)
	}
	e.facility = facilities["user"]
	if e.Facility != "" {
		f, ok := facilities[strings.ToLower(e.Facility)]
		if !ok {
			return fmt.Errorf("unknown syslog facility %q", e.Facility)
		}
		e.facility = f
	}
	e.localHost = e.Hostname
	if e.localHost == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			e.localHost = h
		} else {
			e.localHost = "-"
		}
	}
	e.procID = e.ProcID
	if e.procID == "" {
		e.procID = strconv.Itoa(os.Getpid())
	}
	for name, v := range map[string]string{"hostname": e.Hostname, "app_name": e.AppName, "procid": e.ProcID, "msgid": e.MsgID} {
		if strings.ContainsAny(v, " \t\r\n") {
			return fmt.Errorf("%s %q must not contain spaces", name, v)
		}
	}
	if sd := e.StructuredData; sd != "" && sd != "-" && (sd[0] != '[' || sd[len(sd)-1] != ']') {
		return fmt.Errorf("structured_data %q: want one or more [id param=\"value\"] elements", sd)
	}
	return nil
}

// Clone implements zapcore.Encoder.
func (e Encoder) Clone() zapcore.Encoder {
	c := e
	c.Encoder = e.Encoder.Clone()
	return c
}

// EncodeEntry implements zapcore.Encoder.
func (e Encoder) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	msg, err := e.Encoder.EncodeEntry(ent, fields)
	if err != nil {
		return nil, err
	}
	defer msg.Free()
	sev, app, host := severity(ent.Level), "caddy", e.localHost
	for i := range fields {
		f := &fields[i]
		switch {
		case f.Key == "level_no" && f.Type == zapcore.Int64Type:
			sev = pythonSeverity(int(f.Integer))
		case f.Key == "app" && f.Type == zapcore.StringType && f.String != "":
			app = f.String
		case f.Key == "host" && f.Type == zapcore.StringType && f.String != "":
			host = f.String
		}
	}
	if e.AppName != "" {
		app = e.AppName
	}
	if e.Hostname != "" {
		host = e.Hostname
	}
	out := bufferPool.Get()
	out.AppendByte('<')
	out.AppendInt(int64(e.facility*8 + sev))
	out.AppendByte('>')
	t := ent.Time
	if e.RFC == "rfc3164" {
		out.AppendString(t.Format(time.Stamp))
		out.AppendByte(' ')
		out.AppendString(header(host, 255))
		out.AppendByte(' ')
		out.AppendString(header(app, 32))
		out.AppendByte('[')
		out.AppendString(e.procID)
		out.AppendString("]: ")
	} else {
		out.AppendString("1 ")
		out.AppendString(t.Format("2006-01-02T15:04:05.000000Z07:00"))
		out.AppendByte(' ')
		out.AppendString(header(host, 255))
		out.AppendByte(' ')
		out.AppendString(header(app, 48))
		out.AppendByte(' ')
		out.AppendString(header(e.procID, 128))
		out.AppendByte(' ')
		out.AppendString(orNil(header(e.MsgID, 32)))
		out.AppendByte(' ')
		out.AppendString(orNil(e.StructuredData))
		out.AppendByte(' ')
	}
	// The wrapped encoder may have left line breaks and terminal controls
	// from the record raw (console writes the message as it is): escape
	// them, so that the entry stays one line a record cannot forge.
	oneline.Append(out, oneline.TrimEnding(msg.Bytes()))
	out.AppendByte('\n')
	return out, nil
}

var bufferPool = buffer.NewPool()

func orNil(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// header makes s a valid header field: printable US-ASCII without
// spaces, at most max characters (RFC 5424 section 6), or "-".
func header(s string, max int) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			clean = false
			break
		}
	}
	if !clean {
		b := []byte(s)
		for i, c := range b {
			if c <= ' ' || c > '~' {
				b[i] = '_'
			}
		}
		s = string(b)
	}
	if len(s) > max {
		s = s[:max]
	}
	return orNil(s)
}

// severity maps zap's levels onto syslog severities.
func severity(l zapcore.Level) int {
	switch l {
	case zapcore.DebugLevel:
		return 7
	case zapcore.InfoLevel:
		return 6
	case zapcore.WarnLevel:
		return 4
	case zapcore.ErrorLevel:
		return 3
	case zapcore.DPanicLevel:
		return 2
	case zapcore.PanicLevel:
		return 1
	case zapcore.FatalLevel:
		return 0
	}
	return 6
}

// pythonSeverity maps a record's level on Python's scale (which holds
// syslog's notice at 25, alert at 60 and emerg at 70) onto syslog's.
func pythonSeverity(levelNo int) int {
	switch {
	case levelNo >= 70:
		return 0
	case levelNo >= 60:
		return 1
	case levelNo >= 50:
		return 2
	case levelNo >= 40:
		return 3
	case levelNo >= 30:
		return 4
	case levelNo >= 25:
		return 5
	case levelNo >= 20:
		return 6
	}
	return 7
}

// UnmarshalCaddyfile sets up the encoder from Caddyfile tokens:
//
//	format syslog [rfc5424|rfc3164] {
//		facility        <name>
//		hostname        <name>
//		app_name        <name>
//		procid          <id>
//		msgid           <id>
//		structured_data <elements>
//		wrap            <encoder> ...
//	}
func (e *Encoder) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume encoder name
	if d.NextArg() {
		e.RFC = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		if opt == "wrap" {
			raw, err := nested.Encoder(d)
			if err != nil {
				return err
			}
			e.WrappedRaw = raw
			continue
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		switch opt {
		case "facility":
			e.Facility = d.Val()
		case "hostname":
			e.Hostname = d.Val()
		case "app_name":
			e.AppName = d.Val()
		case "procid":
			e.ProcID = d.Val()
		case "msgid":
			e.MsgID = d.Val()
		case "structured_data":
			e.StructuredData = d.Val()
		default:
			return d.Errf("unrecognized syslog encoder option '%s'", opt)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	probe := *e
	if err := probe.setup(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// Interface guards
var (
	_ zapcore.Encoder       = (*Encoder)(nil)
	_ caddy.Provisioner     = (*Encoder)(nil)
	_ caddyfile.Unmarshaler = (*Encoder)(nil)
)

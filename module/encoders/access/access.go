// Package access provides the access encoder: Caddy's HTTP access log
// entries written as the lines Apache httpd or gunicorn would write for
// the same request, with the client address Caddy resolved.
package access

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/logging"

	"github.com/caddy-applog/caddy-applog/internal/nested"
	"github.com/caddy-applog/caddy-applog/internal/oneline"
)

func init() {
	caddy.RegisterModule(Encoder{})
}

// Encoder writes Caddy's HTTP access log entries as the lines Apache
// httpd or gunicorn write for the same request (Common or Combined Log
// Format, any Apache LogFormat string, any gunicorn access_log_format),
// so that the tools that parse those lines keep working when Caddy takes
// over. The client address is Caddy's client_ip (trusted proxies, PROXY
// protocol), never a header an untrusted peer sent. Values follow the
// imitated tool byte for byte, except that every entry is one line.
// Directives whose value Caddy's entries do not carry are refused when
// the config loads. Other entries go to the fallback encoder.
type Encoder struct {
	// A named format: common, combined (Apache's) or gunicorn
	// (gunicorn's default). Default: combined, if no format is set.
	Preset string `json:"preset,omitempty"`

	// An Apache mod_log_config format string, as in httpd's LogFormat
	// directive. Default: none.
	Apache string `json:"apache,omitempty"`

	// A gunicorn access_log_format string. Default: none.
	Gunicorn string `json:"gunicorn,omitempty"`

	// The encoder for entries that are not access log entries.
	// Default: json, or console when writing to a terminal.
	FallbackRaw json.RawMessage `json:"fallback,omitempty" caddy:"namespace=caddy.logging.encoders inline_key=format"`

	encoder
}

// encoder is the zapcore.Encoder: the compiled configuration, shared,
// and the fields added with zap's With (Caddy adds the request that
// way), one per clone. Clones are of this type, not of Encoder, so that
// the clone Caddy makes for every request is small: the configuration
// pointer, the recorded fields and room for the first of them.
type encoder struct {
	c   *compiled
	rec recorder
	// first is where a clone records its first field when it has none
	// from its parent: Caddy's request, the only field its server adds
	// with With, then costs no allocation besides the clone itself. The
	// request is kept as its marshaler (see recorder.AddObject), read
	// only when an entry is encoded: With copies and marshals nothing.
	first [1]node
}

// compiled is what Provision sets up, shared by all clones.
type compiled struct {
	format            *format
	fallback          zapcore.Encoder
	fallbackIsDefault bool
	loc               *time.Location
	pid               string
	ctx               caddy.Context
}

// CaddyModule returns the Caddy module information.
func (Encoder) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.encoders.access",
		New: func() caddy.Module { return new(Encoder) },
	}
}

// Provision compiles the format and loads the fallback encoder.
func (e *Encoder) Provision(ctx caddy.Context) error {
	sty, src, err := e.source()
	if err != nil {
		return err
	}
	f, err := parse(sty, src)
	if err != nil {
		return fmt.Errorf("access encoder: %v", err)
	}
	c := &compiled{format: f, loc: time.Local, pid: strconv.Itoa(os.Getpid()), ctx: ctx}
	if e.FallbackRaw == nil {
		c.fallback, c.fallbackIsDefault = &logging.JSONEncoder{}, true
		if err := c.fallback.(caddy.Provisioner).Provision(ctx); err != nil {
			return fmt.Errorf("access encoder: provisioning default fallback encoder: %v", err)
		}
	} else {
		e.FallbackRaw = oneline.Uncolor(e.FallbackRaw)
		val, err := ctx.LoadModule(e, "FallbackRaw")
		if err != nil {
			return fmt.Errorf("access encoder: loading fallback encoder module: %v", err)
		}
		c.fallback = val.(zapcore.Encoder)
	}
	e.encoder = encoder{c: c}
	return nil
}

// Validate checks that at most one format is configured.
func (e *Encoder) Validate() error {
	_, _, err := e.source()
	return err
}

// source returns the syntax and text of the configured format.
func (e *Encoder) source() (style, string, error) {
	set := 0
	for _, s := range []string{e.Preset, e.Apache, e.Gunicorn} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		return 0, "", fmt.Errorf("access encoder: set only one of preset, apache and gunicorn")
	}
	switch {
	case e.Apache != "":
		return apache, e.Apache, nil
	case e.Gunicorn != "":
		return gunicorn, e.Gunicorn, nil
	}
	switch e.Preset {
	case "", "combined":
		return apache, combinedFormat, nil
	case "common":
		return apache, commonFormat, nil
	case "gunicorn":
		return gunicorn, gunicornFormat, nil
	}
	return 0, "", fmt.Errorf("access encoder: unknown preset %q (want common, combined or gunicorn)", e.Preset)
}

// parse compiles src in the given syntax.
func parse(sty style, src string) (*format, error) {
	var (
		f   *format
		err error
	)
	if sty == gunicorn {
		f, err = parseGunicorn(src)
	} else {
		f, err = parseApache(src)
	}
	if err != nil {
		return nil, fmt.Errorf("%s format %q: %v", sty, src, err)
	}
	return f, nil
}

// ConfigureDefaultFormat makes the default fallback encoder console
// when the log goes to a terminal, as Caddy does for its own default
// encoder, and otherwise lets a configured fallback make its own choice.
func (e *Encoder) ConfigureDefaultFormat(wo caddy.WriterOpener) error {
	if !e.c.fallbackIsDefault {
		if cfd, ok := e.c.fallback.(caddy.ConfiguresFormatterDefault); ok {
			return cfd.ConfigureDefaultFormat(wo)
		}
		return nil
	}
	if caddy.IsWriterStandardStream(wo) && isTerminal(os.Stderr) {
		// Plain level names: colour codes are control characters, which
		// encodeFallback escapes.
		console := &logging.ConsoleEncoder{LogEncoderConfig: logging.LogEncoderConfig{LevelFormat: "upper"}}
		if err := console.Provision(e.c.ctx); err != nil {
			return fmt.Errorf("access encoder: provisioning console fallback encoder: %v", err)
		}
		e.c.fallback = console
	}
	return nil
}

// isTerminal reports whether f is a character device, which is how a
// terminal looks from the standard library.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// UnmarshalCaddyfile sets up the encoder from Caddyfile tokens. Syntax:
//
//	access [common|combined|gunicorn] {
//	    fallback <encoder> [<encoder args...>]
//	}
//	access apache   <format>
//	access gunicorn <format>
//
// Without arguments the format is combined. The format is a single
// token: quote it, escaping inner quotes (`"%h \"%r\""`), or use
// backticks (`%h "%r"`). fallback takes an encoder as `format` does,
// with its own block if it has one, e.g. `fallback console` or
// `fallback json { time_format iso8601 }`.
func (e *Encoder) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume encoder name
	args := d.RemainingArgs()
	switch len(args) {
	case 0:
	case 1:
		switch args[0] {
		case "common", "combined", "gunicorn":
			e.Preset = args[0]
		case "apache":
			return d.Err(`apache needs a format string, e.g. access apache "%h %l %u %t \"%r\" %>s %b"`)
		default:
			return d.Errf("unknown format %q: want common, combined, gunicorn, apache <format> or gunicorn <format>", args[0])
		}
	case 2:
		var sty style
		switch args[0] {
		case "apache":
			sty, e.Apache = apache, args[1]
		case "gunicorn":
			sty, e.Gunicorn = gunicorn, args[1]
		default:
			return d.Errf("unknown format syntax %q: want apache <format> or gunicorn <format>", args[0])
		}
		// Report format errors when the Caddyfile is adapted, with
		// the line, rather than when the config is loaded.
		if _, err := parse(sty, args[1]); err != nil {
			return d.Err(err.Error())
		}
	default:
		return d.ArgErr()
	}

	for d.NextBlock(0) {
		switch d.Val() {
		case "fallback":
			if e.FallbackRaw != nil {
				return d.Err("fallback already set")
			}
			raw, err := nested.Encoder(d)
			if err != nil {
				return err
			}
			e.FallbackRaw = raw
		default:
			return d.Errf("unrecognized subdirective %s", d.Val())
		}
	}
	return nil
}

// Clone returns a copy of the encoder that shares the fields added so
// far and appends its own elsewhere (see recorder.fork).
func (e *encoder) Clone() zapcore.Encoder {
	c := &encoder{c: e.c, rec: e.rec.fork()}
	if len(c.rec.nodes) == 0 {
		c.rec.nodes = c.first[:0]
	}
	return c
}

// isAccessLogger reports whether name is Caddy's access logger
// (http.log.access, or http.log.access.<name> for named server logs).
func isAccessLogger(name string) bool {
	const prefix = "http.log.access"
	return strings.HasPrefix(name, prefix) && (len(name) == len(prefix) || name[len(prefix)] == '.')
}

var (
	bufferPool  = buffer.NewPool()
	scratchPool = sync.Pool{New: func() any { return new(recorder) }}
)

// EncodeEntry writes an access log entry as one line in the configured
// format, and any other entry with the fallback encoder. It may be
// called concurrently: it reads e's recorded fields and writes only to
// pooled scratch space.
func (e *encoder) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	if !isAccessLogger(ent.LoggerName) {
		return e.encodeFallback(ent, fields)
	}
	var en entry
	context := span{e.rec.nodes, 0, len(e.rec.nodes)}
	inNamespace := !en.read(context)

	// Caddy's own fields are read as they are; anything else (log_append
	// fields, values of unexpected types) is recorded for %{name}n.
	var sc *recorder
	defer func() {
		if sc != nil {
			releaseScratch(sc)
		}
	}()
	for i := range fields {
		f := &fields[i]
		if !inNamespace && en.readField(f) {
			continue
		}
		if sc == nil {
			sc = scratchPool.Get().(*recorder)
		}
		f.AddTo(sc)
	}
	var own span
	if sc != nil && !inNamespace {
		own = span{sc.nodes, 0, len(sc.nodes)}
		en.read(own)
	}
	en.tops = [2]span{context, own}
	if !en.hasRequest {
		// An entry of the access logger without a request is not one
		// Caddy's server wrote; keep it rather than invent a line.
		return e.encodeFallback(ent, fields)
	}

	t := timing{end: ent.Time.In(e.c.loc), pid: e.c.pid}
	t.begin = t.end.Add(-en.duration)
	b := bufferPool.Get()
	e.c.format.render(b, &en, &t)
	b.AppendByte('\n')
	return b, nil
}

// releaseScratch empties a scratch recorder (dropping its references
// to the entry's values) and returns it to the pool, unless an unusual
// entry made it large.
func releaseScratch(sc *recorder) {
	if cap(sc.nodes) > 1024 {
		return
	}
	clear(sc.nodes)
	sc.nodes = sc.nodes[:0]
	scratchPool.Put(sc)
}

// encodeFallback writes ent with the fallback encoder, replaying the
// fields added with With first, as one line: what the fallback left
// raw (console writes the message as it is) is escaped.
func (e *encoder) encodeFallback(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	enc := e.c.fallback
	if len(e.rec.nodes) > 0 {
		enc = enc.Clone()
		if err := replayObject(enc, e.rec.nodes, 0, len(e.rec.nodes)); err != nil {
			return nil, fmt.Errorf("access encoder: replaying context fields to the fallback encoder: %v", err)
		}
	}
	buf, err := enc.EncodeEntry(ent, fields)
	if err != nil {
		return nil, err
	}
	return oneline.Line(buf), nil
}

// The zapcore.ObjectEncoder methods record fields added with With (and
// those Caddy's filter encoder passes on) for EncodeEntry.

func (e *encoder) AddArray(key string, m zapcore.ArrayMarshaler) error {
	return e.rec.AddArray(key, m)
}

func (e *encoder) AddObject(key string, m zapcore.ObjectMarshaler) error {
	return e.rec.AddObject(key, m)
}

func (e *encoder) AddBinary(key string, v []byte)          { e.rec.AddBinary(key, v) }
func (e *encoder) AddByteString(key string, v []byte)      { e.rec.AddByteString(key, v) }
func (e *encoder) AddBool(key string, v bool)              { e.rec.AddBool(key, v) }
func (e *encoder) AddComplex128(key string, v complex128)  { e.rec.AddComplex128(key, v) }
func (e *encoder) AddComplex64(key string, v complex64)    { e.rec.AddComplex64(key, v) }
func (e *encoder) AddDuration(key string, v time.Duration) { e.rec.AddDuration(key, v) }
func (e *encoder) AddFloat64(key string, v float64)        { e.rec.AddFloat64(key, v) }
func (e *encoder) AddFloat32(key string, v float32)        { e.rec.AddFloat32(key, v) }
func (e *encoder) AddInt(key string, v int)                { e.rec.AddInt(key, v) }
func (e *encoder) AddInt64(key string, v int64)            { e.rec.AddInt64(key, v) }
func (e *encoder) AddInt32(key string, v int32)            { e.rec.AddInt32(key, v) }
func (e *encoder) AddInt16(key string, v int16)            { e.rec.AddInt16(key, v) }
func (e *encoder) AddInt8(key string, v int8)              { e.rec.AddInt8(key, v) }
func (e *encoder) AddString(key, v string)                 { e.rec.AddString(key, v) }
func (e *encoder) AddTime(key string, v time.Time)         { e.rec.AddTime(key, v) }
func (e *encoder) AddUint(key string, v uint)              { e.rec.AddUint(key, v) }
func (e *encoder) AddUint64(key string, v uint64)          { e.rec.AddUint64(key, v) }
func (e *encoder) AddUint32(key string, v uint32)          { e.rec.AddUint32(key, v) }
func (e *encoder) AddUint16(key string, v uint16)          { e.rec.AddUint16(key, v) }
func (e *encoder) AddUint8(key string, v uint8)            { e.rec.AddUint8(key, v) }
func (e *encoder) AddUintptr(key string, v uintptr)        { e.rec.AddUintptr(key, v) }
func (e *encoder) AddReflected(key string, v any) error    { return e.rec.AddReflected(key, v) }
func (e *encoder) OpenNamespace(key string)                { e.rec.OpenNamespace(key) }

// Interface guards
var (
	_ zapcore.Encoder                  = (*Encoder)(nil)
	_ zapcore.Encoder                  = (*encoder)(nil)
	_ caddy.Provisioner                = (*Encoder)(nil)
	_ caddy.Validator                  = (*Encoder)(nil)
	_ caddy.ConfiguresFormatterDefault = (*Encoder)(nil)
	_ caddyfile.Unmarshaler            = (*Encoder)(nil)
)

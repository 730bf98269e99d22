// Package rotate provides the `rotate` log writer
// (caddy.logging.writers.rotate): log files rotated on a schedule (named
// or cron) and by size, compressed in the background, pruned by count
// and age, optionally one file per source host.
package rotate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/internal/size"
)

func init() {
	caddy.RegisterModule(RotateWriter{})
}

// RotateWriter writes logs to a file that it rotates on a schedule
// (named or cron), by size, or both, whichever comes first; a scheduled
// rotation happens at the boundary even when nothing is logged. Backups
// get sortable names next to the file (`app-2026-11-21T00-00-00.log.gz`),
// are compressed in the background and pruned by count and age. A file
// name with placeholders, `/var/log/applog/{app}/{facility}.log`, writes
// each entry to the file its JSON fields name, each file rotated on its
// own. Log blocks naming the same file share it, and a reload hands it
// over without losing an entry.
type RotateWriter struct {
	// The file to write. Global placeholders such as {env.X} are replaced
	// when the config is loaded; other placeholders, {app}, {facility},
	// {host}, {level} or a dotted path such as {request.host}, make it a
	// template filled from each entry's JSON fields, with an optional
	// default: {facility:root}.
	Filename string `json:"filename,omitempty"`

	// Where entries go that the template cannot place (not JSON, a
	// field missing without a default). Default: unplaced.log in the
	// template's deepest folder without placeholders.
	Fallback string `json:"fallback,omitempty"`

	// How many of a template's files are kept open; the least recently
	// written is closed beyond it, and reopened when needed. Default: 256.
	MaxOpenFiles int `json:"max_open_files,omitempty"`

	// When to rotate: `hourly`, `daily`, `weekly`, `monthly`, `yearly`,
	// or 5 cron fields such as `0 3 * * MON-FRI`. Default: no schedule.
	Every string `json:"every,omitempty"`

	// Rotate before a write would make the file larger than this many
	// bytes. Default: 100 MiB when `every` is not set, else no limit.
	MaxSize int64 `json:"max_size,omitempty"`

	// How many backups to keep per file (-1: all). Default: 10, or all
	// when `max_age` is set.
	Keep int `json:"keep,omitempty"`

	// Remove backups rotated longer ago than this. Default: never.
	MaxAge caddy.Duration `json:"max_age,omitempty"`

	// How to compress backups: `gzip` (default), `zstd` or `none`.
	Compress string `json:"compress,omitempty"`

	// The compression level: 1-9 for gzip (default 5), 1-22 for zstd
	// (default 3, mapped to the nearest speed of the Go encoder).
	CompressLevel int `json:"compress_level,omitempty"`

	// Read the schedule and write backup times on the local clock.
	// Default: UTC.
	LocalTime bool `json:"local_time,omitempty"`

	// The mode of the log file and its backups, in octal. Default: 0600.
	Mode string `json:"mode,omitempty"`

	// Write the entries of each source host to their own file,
	// `<host>-<file>`: shorthand for the template `{dir}/{host}-<file>`,
	// whose fallback is the file itself. Default: off.
	PerHost bool `json:"per_host,omitempty"`

	// When entries reach the file: `batch` gathers them and writes
	// whatever has gathered with one write as soon as the writer's
	// goroutine runs (microseconds later); `always` writes each entry at
	// once; a duration such as `1s` writes every interval. Buffers are
	// written at rotation, reload and exit too. Default: batch.
	Flush string `json:"flush,omitempty"`

	// How backups are named, from the tokens {name} {base} {host} {ext}
	// {time} {n}; or `numbered`: app.log.1 (newest), app.log.2.gz...
	// Default: `{name}-{time}{n}{ext}`.
	NameFormat string `json:"name_format,omitempty"`

	path  string
	opts  *options
	clock clock
	loc   *time.Location // tests: the zone local_time uses
	gen   any            // the context of the config w was provisioned in
}

// DefaultMaxSize is max_size when neither it nor `every` is set.
const DefaultMaxSize = 100 << 20

// DefaultKeep is keep when neither it nor max_age is set.
const DefaultKeep = 10

// CaddyModule returns the Caddy module information.
func (RotateWriter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.writers.rotate",
		New: func() caddy.Module { return new(RotateWriter) },
	}
}

// Provision resolves the configuration.
func (w *RotateWriter) Provision(ctx caddy.Context) error {
	// Global placeholders now; the others are the template's.
	repl := caddy.NewReplacer()
	w.Filename = repl.ReplaceKnown(w.Filename, "")
	if w.Fallback != "" {
		w.Fallback = repl.ReplaceKnown(w.Fallback, "")
	}
	if err := w.setup(); err != nil {
		return err
	}
	// Every module of one config is provisioned with the same context,
	// cancelled when the config is unloaded: it tells two log blocks of
	// one config apart from an old and a new config during a reload, and
	// says how long the config uses the writer (see handle.go).
	w.gen = ctx.Context
	return w.lease(ctx.Context)
}

// setup checks the exported fields and resolves them into options.
func (w *RotateWriter) setup() error {
	if w.Filename == "" {
		return errors.New("rotate: a filename is required")
	}
	if err := w.Validate(); err != nil {
		return err
	}
	path, err := caddy.FastAbs(w.Filename)
	if err != nil {
		return fmt.Errorf("rotate: %s: %w", w.Filename, err)
	}
	w.path = filepath.Clean(path)
	if w.clock == nil {
		w.clock = realClock{}
	}
	o := &options{loc: time.UTC, perHost: w.PerHost, maxSize: w.MaxSize, maxOpen: w.MaxOpenFiles}
	o.batch, o.flush, err = parseFlush(w.Flush)
	if err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	if o.maxOpen == 0 {
		o.maxOpen = DefaultMaxOpenFiles
	}
	switch {
	// Only the configured name holds placeholders: a relative one is
	// read in Caddy's working directory, whatever braces its path has.
	case hasPlaceholder(w.Filename) && w.PerHost:
		return errors.New("rotate: per_host is shorthand for the template {dir}/{host}-<file>: put {host} in the file name instead")
	case hasPlaceholder(w.Filename):
		cwd := ""
		if !filepath.IsAbs(w.Filename) {
			if cwd, err = caddy.FastAbs("."); err != nil {
				return fmt.Errorf("rotate: %s: %w", w.Filename, err)
			}
		}
		if o.tmpl, err = parseTemplate(cwd, w.Filename); err != nil {
			return fmt.Errorf("rotate: %w", err)
		}
		o.fallback = filepath.Join(o.tmpl.dir, "unplaced.log")
		if w.Fallback != "" {
			if hasPlaceholder(w.Fallback) {
				return fmt.Errorf("rotate: fallback %s: a file name without placeholders", w.Fallback)
			}
			if o.fallback, err = caddy.FastAbs(w.Fallback); err != nil {
				return fmt.Errorf("rotate: fallback %s: %w", w.Fallback, err)
			}
			o.fallback = filepath.Clean(o.fallback)
		}
	case w.Fallback != "":
		return errors.New("rotate: fallback is for a file name with placeholders")
	case w.PerHost:
		dir, file := filepath.Split(w.path)
		if o.tmpl, err = parseTemplate(dir, "{host}-"+file); err != nil {
			return fmt.Errorf("rotate: per_host: %w", err)
		}
		o.fallback = w.path
	}
	if w.LocalTime {
		o.loc = time.Local
		if w.loc != nil {
			o.loc = w.loc
		}
	}
	if w.Every != "" {
		if o.sched, err = parseSchedule(w.Every); err != nil {
			return fmt.Errorf("rotate: every: %w", err)
		}
	} else if o.maxSize == 0 {
		o.maxSize = DefaultMaxSize
	}
	format, err := parseNameFormat(w.NameFormat, w.PerHost)
	if err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	o.ret = retention{format: format, loc: o.loc, keep: w.Keep, maxAge: time.Duration(w.MaxAge)}
	switch {
	case w.Keep < 0:
		o.ret.keep = 0
	case w.Keep == 0 && w.MaxAge == 0:
		o.ret.keep = DefaultKeep
	}
	o.comp = compression{algo: w.Compress, level: w.CompressLevel, mode: 0o600}
	if o.comp.algo == "" {
		o.comp.algo = "gzip"
	}
	if w.Mode != "" {
		m, err := parseMode(w.Mode)
		if err != nil {
			return fmt.Errorf("rotate: mode: %w", err)
		}
		o.comp.mode = m
	}
	o.key = w.WriterKey()
	w.opts = o
	return nil
}

// Validate checks the configuration.
func (w *RotateWriter) Validate() error {
	switch {
	case w.MaxSize < 0:
		return errors.New("rotate: max_size must not be negative")
	case w.Keep < -1:
		return errors.New("rotate: keep must be a positive number, or -1 for all")
	case w.MaxAge < 0:
		return errors.New("rotate: max_age must not be negative")
	case w.MaxOpenFiles < 0:
		return errors.New("rotate: max_open_files must not be negative")
	}
	if _, _, err := parseFlush(w.Flush); err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	switch w.Compress {
	case "", "gzip":
		if w.CompressLevel != 0 && (w.CompressLevel < 1 || w.CompressLevel > 9) {
			return fmt.Errorf("rotate: gzip level %d: want 1-9", w.CompressLevel)
		}
	case "zstd":
		if w.CompressLevel != 0 && (w.CompressLevel < 1 || w.CompressLevel > 22) {
			return fmt.Errorf("rotate: zstd level %d: want 1-22", w.CompressLevel)
		}
	case "none":
		if w.CompressLevel != 0 {
			return errors.New("rotate: compress none takes no level")
		}
	default:
		return fmt.Errorf("rotate: compress %q: want gzip, zstd or none", w.Compress)
	}
	return nil
}

func (w *RotateWriter) String() string {
	if w.path != "" {
		return w.path
	}
	return w.Filename
}

// WriterKey identifies the writer's path and every option, so that a
// reload which changes an option opens a writer with the new options
// (handing the file over, see handle.go) instead of reusing the old one.
func (w *RotateWriter) WriterKey() string {
	c := *w
	if w.path != "" {
		c.Filename = w.path
	}
	opts, _ := json.Marshal(c)
	return "rotate:" + c.Filename + ":" + string(opts)
}

// OpenWriter opens the writer.
func (w *RotateWriter) OpenWriter() (io.WriteCloser, error) {
	if w.opts == nil {
		if err := w.setup(); err != nil {
			return nil, err
		}
	}
	h := newHandle(w.path, w.opts, w.clock, w.gen)
	if err := h.attach(); err != nil {
		return nil, err
	}
	if w.gen != nil {
		adopt(w.opts.key, h)
	}
	return h, nil
}

// UnmarshalCaddyfile sets up the writer from Caddyfile tokens. Syntax:
//
//	rotate <filename> {
//		every       <hourly|daily|weekly|monthly|yearly|"<cron expression>">
//		max_size    <size>
//		keep        <count|all>
//		max_age     <duration>
//		compress    <gzip|zstd|none> [<level>]
//		local_time | utc
//		mode        <octal mode>
//		per_host
//		fallback       <file>
//		max_open_files <count>
//		flush       <always|batch|interval>
//		name_format <pattern>
//	}
//
// The cron expression may also be written as 5 unquoted arguments.
// Sizes take units (`10MiB`, `500KB`); durations Caddy's (`30d`, `12h`).
func (w *RotateWriter) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume writer name
	if !d.NextArg() {
		return d.ArgErr()
	}
	w.Filename = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		args := d.RemainingArgs()
		one := func() (string, error) {
			if len(args) != 1 {
				return "", d.ArgErr()
			}
			return args[0], nil
		}
		none := func() error {
			if len(args) != 0 {
				return d.ArgErr()
			}
			return nil
		}
		switch opt {
		case "every":
			if len(args) != 1 && len(args) != 5 {
				return d.Errf("every: want hourly, daily, weekly, monthly, yearly or a cron expression of 5 fields")
			}
			every := strings.Join(args, " ")
			if _, err := parseSchedule(every); err != nil {
				return d.Errf("every: %v", err)
			}
			w.Every = every
		case "max_size":
			v, err := one()
			if err != nil {
				return err
			}
			n, err := size.Parse(v, math.MaxInt64)
			if err != nil || n <= 0 {
				return d.Errf("max_size: want a size such as 10MiB, got %q", v)
			}
			w.MaxSize = n
		case "keep":
			v, err := one()
			if err != nil {
				return err
			}
			if v == "all" {
				w.Keep = -1
				break
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return d.Errf("keep: want a positive number or all, got %q", v)
			}
			w.Keep = n
		case "max_age":
			v, err := one()
			if err != nil {
				return err
			}
			age, err := caddy.ParseDuration(v)
			if err != nil || age <= 0 {
				return d.Errf("max_age: want a positive duration such as 30d, got %q", v)
			}
			w.MaxAge = caddy.Duration(age)
		case "compress":
			if len(args) < 1 || len(args) > 2 {
				return d.ArgErr()
			}
			switch args[0] {
			case "gzip", "zstd", "none":
				w.Compress = args[0]
			default:
				return d.Errf("compress: want gzip, zstd or none, got %q", args[0])
			}
			w.CompressLevel = 0
			if len(args) == 2 {
				level, err := strconv.Atoi(args[1])
				if err != nil {
					return d.Errf("compress: bad level %q", args[1])
				}
				w.CompressLevel = level
			}
			if err := w.Validate(); err != nil {
				return d.Err(err.Error())
			}
		case "local_time", "utc":
			if err := none(); err != nil {
				return err
			}
			w.LocalTime = opt == "local_time"
		case "mode":
			v, err := one()
			if err != nil {
				return err
			}
			if _, err := parseMode(v); err != nil {
				return d.Errf("mode: %v", err)
			}
			w.Mode = v
		case "per_host":
			if err := none(); err != nil {
				return err
			}
			w.PerHost = true
		case "fallback":
			v, err := one()
			if err != nil {
				return err
			}
			w.Fallback = v
		case "max_open_files":
			v, err := one()
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return d.Errf("max_open_files: want a positive number, got %q", v)
			}
			w.MaxOpenFiles = n
		case "flush":
			v, err := one()
			if err != nil {
				return err
			}
			if _, _, err := parseFlush(v); err != nil {
				return d.Err(err.Error())
			}
			w.Flush = v
		case "name_format":
			v, err := one()
			if err != nil {
				return err
			}
			w.NameFormat = v
		default:
			return d.Errf("unrecognized subdirective '%s'", opt)
		}
	}
	if w.NameFormat != "" {
		if _, err := parseNameFormat(w.NameFormat, w.PerHost); err != nil {
			return d.Err(err.Error())
		}
	}
	return nil
}

// parseFlush parses the flush option: batch (the default), always, or
// an interval.
func parseFlush(s string) (batch bool, interval time.Duration, err error) {
	switch s {
	case "", "batch":
		return true, 0, nil
	case "always":
		return false, 0, nil
	}
	interval, err = caddy.ParseDuration(s)
	if err != nil || interval <= 0 {
		return false, 0, fmt.Errorf("flush: want batch, always or an interval such as 1s, got %q", s)
	}
	return false, interval, nil
}

// parseMode parses an octal file mode such as 0640 or 640.
func parseMode(s string) (os.FileMode, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("want an octal mode such as 0640, got %q", s)
	}
	if m&0o200 == 0 {
		return 0, fmt.Errorf("mode %q: the owner must be able to write", s)
	}
	return os.FileMode(m), nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*RotateWriter)(nil)
	_ caddy.Validator       = (*RotateWriter)(nil)
	_ caddy.WriterOpener    = (*RotateWriter)(nil)
	_ caddyfile.Unmarshaler = (*RotateWriter)(nil)
	_ io.WriteCloser        = (*handle)(nil)
)

package forward

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/internal/size"
	"github.com/caddy-applog/caddy-applog/internal/tlsconfig"
)

// Spool is a forwarding writer's `spool` option, in JSON and in the
// Caddyfile alike; every writer on this core embeds it the same way.
type Spool struct {
	// The folder, created if missing. One writer at a time may use it.
	Dir string `json:"dir,omitempty"`

	// The most undelivered data the spool holds, in bytes. Default: 1GiB.
	MaxSize int64 `json:"max_size,omitempty"`

	// What a write does when the spool is full: block, drop_oldest or
	// drop_newest. Default: block.
	OnFull string `json:"on_full,omitempty"`

	// When spooled entries are fsynced: every (before each write
	// returns) or a duration such as 100ms. Default: every.
	Fsync string `json:"fsync,omitempty"`

	fsyncEvery time.Duration
}

// DefaultSpoolMaxSize is a spool's max_size when not set.
const DefaultSpoolMaxSize = 1 << 30

// Provision fills in the defaults and makes the folder absolute.
func (sp *Spool) Provision() error {
	if sp.MaxSize == 0 {
		sp.MaxSize = DefaultSpoolMaxSize
	}
	if sp.OnFull == "" {
		sp.OnFull = "block"
	}
	if sp.Dir != "" {
		dir, err := filepath.Abs(sp.Dir)
		if err != nil {
			return fmt.Errorf("spool folder %q: %w", sp.Dir, err)
		}
		sp.Dir = dir
	}
	return nil
}

// Validate checks the options; the caller names its writer in the error.
func (sp *Spool) Validate() error {
	if sp.Dir == "" {
		return errors.New("spool needs a folder")
	}
	if sp.MaxSize < 1<<16 {
		return fmt.Errorf("spool max_size %d: want at least 64KiB", sp.MaxSize)
	}
	switch sp.OnFull {
	case "block", "drop_oldest", "drop_newest":
	default:
		return fmt.Errorf("spool on_full %q: want block, drop_oldest or drop_newest", sp.OnFull)
	}
	switch sp.Fsync {
	case "", "every":
		sp.fsyncEvery = 0
	default:
		d, err := caddy.ParseDuration(sp.Fsync)
		if err != nil || d <= 0 {
			return fmt.Errorf("spool fsync %q: want every or a positive duration", sp.Fsync)
		}
		sp.fsyncEvery = d
	}
	return nil
}

// Config is what the core opens; sp must have been validated.
func (sp *Spool) Config() *SpoolConfig {
	return &SpoolConfig{Dir: sp.Dir, MaxSize: sp.MaxSize, OnFull: sp.OnFull, FsyncEvery: sp.fsyncEvery}
}

// UnmarshalSpool parses `spool <dir> { max_size on_full fsync }`, the
// dispenser at the folder's token.
func UnmarshalSpool(d *caddyfile.Dispenser, dir string) (*Spool, error) {
	sp := &Spool{Dir: dir}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if !d.NextArg() {
			return nil, d.ArgErr()
		}
		val := d.Val()
		if d.NextArg() {
			return nil, d.ArgErr()
		}
		switch sub {
		case "max_size":
			n, err := size.Parse(val, 1<<62)
			if err != nil {
				return nil, d.Errf("spool max_size: invalid size %q", val)
			}
			sp.MaxSize = n
		case "on_full":
			sp.OnFull = val
		case "fsync":
			sp.Fsync = val
		default:
			return nil, d.Errf("unrecognized spool option '%s'", sub)
		}
	}
	return sp, nil
}

// Options are what every forwarding writer takes the same way, in JSON
// and in the Caddyfile: where entries wait (a spool, or memory) and how
// the sender waits between failed attempts. A writer embeds them.
type Options struct {
	// A folder where entries wait on disk until delivered. Default: none
	// (entries wait in memory).
	Spool *Spool `json:"spool,omitempty"`

	// Without a spool, how many entries may wait in memory. Default:
	// 100000.
	Buffer int `json:"buffer,omitempty"`

	// The first and the longest wait between failed attempts; the wait
	// doubles after each failure. Default: 500ms and 30s.
	BackoffMin caddy.Duration `json:"backoff_min,omitempty"`
	BackoffMax caddy.Duration `json:"backoff_max,omitempty"`
}

// Defaults of Options.
const (
	DefaultBuffer     = 100000
	DefaultBackoffMin = 500 * time.Millisecond
	DefaultBackoffMax = 30 * time.Second
)

// Provision fills in the defaults.
func (o *Options) Provision() error {
	if o.Buffer == 0 {
		o.Buffer = DefaultBuffer
	}
	if o.BackoffMin == 0 {
		o.BackoffMin = caddy.Duration(DefaultBackoffMin)
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = caddy.Duration(max(DefaultBackoffMax, time.Duration(o.BackoffMin)))
	}
	if o.Spool != nil {
		return o.Spool.Provision()
	}
	return nil
}

// Validate checks the options; the caller names its writer in the error.
func (o *Options) Validate() error {
	if o.Buffer < 1 {
		return fmt.Errorf("buffer %d: want a positive number of entries", o.Buffer)
	}
	if o.BackoffMin <= 0 || o.BackoffMax < o.BackoffMin {
		return fmt.Errorf("backoff %v %v: want 0 < min <= max", time.Duration(o.BackoffMin), time.Duration(o.BackoffMax))
	}
	if o.Spool != nil {
		return o.Spool.Validate()
	}
	return nil
}

// Apply sets the queue and retry policy of cfg, and returns the key of
// the hub that holds the queue: the spool's folder, or the peer's name
// (cfg.Name) for a memory queue, so that a reload which keeps them keeps
// the entries waiting.
func (o *Options) Apply(cfg *Config) (hubKey string) {
	cfg.Buffer = o.Buffer
	cfg.BackoffMin, cfg.BackoffMax = time.Duration(o.BackoffMin), time.Duration(o.BackoffMax)
	if o.Spool != nil {
		cfg.Spool = o.Spool.Config()
		return "spool " + o.Spool.Dir
	}
	return "memory " + cfg.Name
}

// UnmarshalOption parses the options of Options inside a writer's
// Caddyfile block, the dispenser at opt's arguments (args):
//
//	spool <folder> { ... }
//	buffer  <entries>
//	backoff <min> [<max>]
//
// It reports false for an option that is not one of these.
func (o *Options) UnmarshalOption(d *caddyfile.Dispenser, opt string, args []string) (bool, error) {
	switch opt {
	case "spool":
		if len(args) != 1 {
			return true, d.ArgErr()
		}
		sp, err := UnmarshalSpool(d, args[0])
		if err != nil {
			return true, err
		}
		o.Spool = sp
	case "buffer":
		if len(args) != 1 {
			return true, d.ArgErr()
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 {
			return true, d.Errf("buffer: want a positive number of entries, got %q", args[0])
		}
		o.Buffer = n
	case "backoff":
		if len(args) < 1 || len(args) > 2 {
			return true, d.ArgErr()
		}
		for i, a := range args {
			dur, err := caddy.ParseDuration(a)
			if err != nil {
				return true, d.Errf("backoff: %v", err)
			}
			if i == 0 {
				o.BackoffMin = caddy.Duration(dur)
			} else {
				o.BackoffMax = caddy.Duration(dur)
			}
		}
	default:
		return false, nil
	}
	return true, nil
}

// UnmarshalShared parses an option a forwarding writer takes the same
// way as every other: one of Options', or one of its TLS client's (c).
// It reports false for an option of the writer's own.
func (o *Options) UnmarshalShared(d *caddyfile.Dispenser, opt string, args []string, c *tlsconfig.Client) (bool, error) {
	if ok, err := o.UnmarshalOption(d, opt, args); ok {
		return true, err
	}
	return c.UnmarshalOption(d, opt, args)
}

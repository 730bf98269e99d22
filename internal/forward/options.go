package forward

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/internal/size"
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

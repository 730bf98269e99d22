package ingest

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-applog/caddy-applog/internal/size"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("log_ingest", parseCaddyfile)
	// log_ingest answers the request itself, like respond: it goes just
	// before respond. It is placed after copy_response, the directive
	// before respond, so that it comes ahead of log_status (placed before
	// respond) whichever of the two packages Go initializes first.
	httpcaddyfile.RegisterDirectiveOrder("log_ingest", httpcaddyfile.After, "copy_response")
}

// parseCaddyfile sets up a log_ingest handler from the directive.
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Ingest)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	log_ingest [<app>] {
//		app <app>
//		facility <facility>
//		max_body_size <size>
//		max_records <n>
//		read_body_timeout <duration>
//	}
func (h *Ingest) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		h.App = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		if !d.NextArg() {
			return d.ArgErr()
		}
		switch opt {
		case "app":
			h.App = d.Val()
		case "facility":
			h.Facility = d.Val()
		case "max_body_size":
			n, err := size.Parse(d.Val(), 1<<40)
			if err != nil {
				return d.Errf("max_body_size: invalid size %q", d.Val())
			}
			h.MaxBodySize = n
		case "max_records":
			n, err := strconv.Atoi(d.Val())
			if err != nil || n <= 0 {
				return d.Errf("max_records: want a positive integer, got %q", d.Val())
			}
			h.MaxRecords = n
		case "read_body_timeout":
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return d.Errf("read_body_timeout: want a positive duration, got %q", d.Val())
			}
			h.ReadBodyTimeout = caddy.Duration(dur)
		default:
			return d.Errf("unrecognized log_ingest option '%s'", opt)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

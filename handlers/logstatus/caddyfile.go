package logstatus

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("log_status", parseCaddyfile)
	// log_status answers the request itself, like respond: it goes just
	// before respond, after log_ingest (see handlers/ingest).
	httpcaddyfile.RegisterDirectiveOrder("log_status", httpcaddyfile.Before, "respond")
}

// parseCaddyfile sets up a log_status handler from the directive.
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(LogStatus)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	log_status {
//		css <path>
//	}
func (h *LogStatus) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "css":
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.CSS = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("unrecognized log_status option '%s'", d.Val())
		}
	}
	return nil
}

package receiver

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/caddy-applog/caddy-applog/internal/size"
)

// UnmarshalServer reads the options every receiver shares from a block;
// other options are passed to more, which returns false if it does not
// know them either.
func (s *Server) UnmarshalServer(d *caddyfile.Dispenser, name string, more func(opt string) (bool, error)) error {
	s.Listen = append(s.Listen, d.RemainingArgs()...)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		switch opt {
		case "listen":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			s.Listen = append(s.Listen, args...)
			continue
		case "proxy_protocol":
			if d.NextArg() {
				return d.ArgErr()
			}
			s.ProxyProtocol = new(ProxyProtocol)
			for n := d.Nesting(); d.NextBlock(n); {
				switch d.Val() {
				case "allow":
					s.ProxyProtocol.Allow = append(s.ProxyProtocol.Allow, d.RemainingArgs()...)
				case "timeout":
					if !d.NextArg() {
						return d.ArgErr()
					}
					dur, err := caddy.ParseDuration(d.Val())
					if err != nil {
						return d.Errf("proxy_protocol timeout: %v", err)
					}
					s.ProxyProtocol.Timeout = caddy.Duration(dur)
				default:
					return d.Errf("unrecognized proxy_protocol option '%s'", d.Val())
				}
			}
			continue
		case "tls":
			if d.NextArg() {
				return d.ArgErr()
			}
			s.TLS = new(TLS)
			for n := d.Nesting(); d.NextBlock(n); {
				if err := s.TLS.unmarshalOption(d); err != nil {
					return err
				}
			}
			continue
		}
		if ok, err := more(opt); err != nil {
			return err
		} else if ok {
			continue
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		val := d.Val()
		switch opt {
		case "app":
			s.App = val
		case "max_message_size":
			n, err := size.Parse(val, 16<<20)
			if err != nil || n == 0 {
				return d.Errf("max_message_size: want 1B to 16MiB, got %q", val)
			}
			s.MaxMessageSize = int(n)
		case "max_connections", "max_connections_per_peer":
			n, err := parsePositive(val)
			if err != nil {
				return d.Errf("%s: %v", opt, err)
			}
			if opt == "max_connections" {
				s.MaxConnections = n
			} else {
				s.MaxConnectionsPerPeer = n
			}
		case "read_timeout", "idle_timeout":
			dur, err := caddy.ParseDuration(val)
			if err != nil || dur <= 0 {
				return d.Errf("%s: want a positive duration, got %q", opt, val)
			}
			if opt == "read_timeout" {
				s.ReadTimeout = caddy.Duration(dur)
			} else {
				s.IdleTimeout = caddy.Duration(dur)
			}
		default:
			return d.Errf("unrecognized %s option '%s'", name, opt)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

// unmarshalOption reads one option of a tls block.
func (t *TLS) unmarshalOption(d *caddyfile.Dispenser) error {
	sub := d.Val()
	if sub == "trust_pool" {
		if !d.NextArg() {
			return d.ArgErr()
		}
		// As Caddy's client_auth reads it: the source module's own
		// Caddyfile syntax follows its name.
		modName := d.Val()
		mod, err := caddyfile.UnmarshalModule(d, "tls.ca_pool.source."+modName)
		if err != nil {
			return d.WrapErr(err)
		}
		if _, ok := mod.(caddytls.CA); !ok {
			return d.Errf("tls trust_pool: module '%s' is not a certificate pool provider", modName)
		}
		t.TrustPoolRaw = caddyconfig.JSONModuleObject(mod, "provider", modName, nil)
		return nil
	}
	args := d.RemainingArgs()
	switch {
	case sub == "certificate" && len(args) == 2:
		t.Certificate, t.Key = args[0], args[1]
	case sub == "certificate_automate" && len(args) == 1:
		t.CertificateAutomate = args[0]
	case sub == "client_ca" && len(args) == 1:
		t.ClientCA = args[0]
	default:
		return d.Errf("tls: want `certificate <cert> <key>`, `certificate_automate <name>`, `client_ca <file>` or `trust_pool <source> ...`, got '%s'", sub)
	}
	return nil
}

func parsePositive(s string) (int, error) {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive integer, got %q", s)
	}
	return n, nil
}

package applog

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/internal/size"
	"github.com/caddy-applog/caddy-applog/module/intake"
)

// UnmarshalCaddyfile sets up the app from the `applog` global option:
//
//	applog {
//		accept_unknown
//		replay_window <duration>
//		max_clock_skew <duration>
//		recent_records <n>
//		syslog        <address...> { ... }
//		python_socket <address...> { ... }
//		facility <app>[:<sub.module>] {
//			level <level>
//			secret <secret...>
//			max_message_size <size>
//			max_record_size <size>
//		}
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "accept_unknown":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.AcceptUnknown = true
		case "replay_window", "max_clock_skew":
			opt := d.Val()
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return d.Errf("%s: want a positive duration, got %q", opt, d.Val())
			}
			if opt == "replay_window" {
				a.ReplayWindow = caddy.Duration(dur)
			} else {
				a.MaxClockSkew = caddy.Duration(dur)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		case "recent_records":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n <= 0 {
				return d.Errf("recent_records: want a positive integer, got %q", d.Val())
			}
			a.RecentRecords = n
			if d.NextArg() {
				return d.ArgErr()
			}
		case "syslog", "python_socket":
			name := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "applog.receivers."+name)
			if err != nil {
				return err
			}
			a.ReceiversRaw = append(a.ReceiversRaw, caddyconfig.JSONModuleObject(unm, "receiver", name, nil))
		case "facility":
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			if _, _, err := splitFacilityName(name); err != nil {
				return d.Err(err.Error())
			}
			if _, dup := a.Facilities[name]; dup {
				return d.Errf("facility %s is configured twice", name)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			f := new(Facility)
			if err := f.unmarshalCaddyfile(d); err != nil {
				return err
			}
			if a.Facilities == nil {
				a.Facilities = make(map[string]*Facility)
			}
			a.Facilities[name] = f
		default:
			return d.Errf("unrecognized applog option '%s'", d.Val())
		}
	}
	return nil
}

func (f *Facility) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "level":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if _, ok := intake.ParseLevel(d.Val()); !ok {
				return d.Errf("unknown level %q", d.Val())
			}
			f.Level = d.Val()
		case "secret":
			f.Secrets = d.RemainingArgs()
			if len(f.Secrets) == 0 {
				return d.ArgErr()
			}
			for _, s := range f.Secrets {
				if _, err := secretPlaceholder(s); err != nil {
					return d.Err(err.Error())
				}
			}
			continue
		case "max_message_size", "max_record_size":
			opt := d.Val()
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := size.Parse(d.Val(), 1<<30)
			if err != nil {
				return d.Errf("%s: %v", opt, err)
			}
			if opt == "max_message_size" {
				f.MaxMessageSize = int(n)
			} else {
				f.MaxRecordSize = int(n)
			}
		default:
			return d.Errf("unrecognized facility option '%s'", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

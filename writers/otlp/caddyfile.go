package otlp

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/internal/size"
)

// UnmarshalCaddyfile sets up the writer from Caddyfile tokens:
//
//	output otlp <endpoint> {
//		header               <name> <value>
//		resource_attribute   <key> <value>
//		compression          gzip|none
//		ca                   <pem-file>
//		client_cert          <cert-file> <key-file>
//		client_cert_automate <name>
//		server_name          <name>
//		spool <folder> {
//			max_size <size>
//			on_full  block|drop_oldest|drop_newest
//			fsync    every|<duration>
//		}
//		buffer               <entries>
//		batch_size           <size>
//		batch_records        <entries>
//		batch_timeout        <duration>
//		timeout              <duration>
//		backoff              <min> [<max>]
//	}
func (w *Writer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume writer name
	if !d.NextArg() {
		return d.ArgErr()
	}
	w.Endpoint = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		args := d.RemainingArgs()
		if ok, err := w.Options.UnmarshalShared(d, opt, args, &w.Client); ok {
			if err != nil {
				return err
			}
			continue
		}
		want := 1
		switch opt {
		case "header", "resource_attribute":
			want = 2
		case "compression", "batch_size", "batch_records", "batch_timeout", "timeout":
		default:
			return d.Errf("unrecognized otlp writer option '%s'", opt)
		}
		if len(args) != want {
			return d.ArgErr()
		}
		switch opt {
		case "header":
			if w.Headers == nil {
				w.Headers = map[string]string{}
			}
			w.Headers[args[0]] = args[1]
		case "resource_attribute":
			if w.ResourceAttributes == nil {
				w.ResourceAttributes = map[string]string{}
			}
			w.ResourceAttributes[args[0]] = args[1]
		case "compression":
			w.Compression = args[0]
		case "batch_size":
			n, err := size.Parse(args[0], 1<<30)
			if err != nil || n < 1 {
				return d.Errf("batch_size: invalid size %q", args[0])
			}
			w.BatchSize = int(n)
		case "batch_records":
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return d.Errf("batch_records: want a positive number of entries, got %q", args[0])
			}
			w.BatchRecords = n
		case "batch_timeout":
			dur, err := caddy.ParseDuration(args[0])
			if err != nil {
				return d.Errf("batch_timeout: %v", err)
			}
			// 0 here means no wait; in JSON it is the default, and
			// a negative value is no wait.
			if dur <= 0 {
				dur = -1
			}
			w.BatchTimeout = caddy.Duration(dur)
		case "timeout":
			dur, err := caddy.ParseDuration(args[0])
			if err != nil {
				return d.Errf("timeout: %v", err)
			}
			w.Timeout = caddy.Duration(dur)
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Writer)(nil)

package otlp

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/internal/forward"
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
		want := func(n ...int) error {
			for _, k := range n {
				if len(args) == k {
					return nil
				}
			}
			return d.ArgErr()
		}
		switch opt {
		case "compression", "ca", "client_cert_automate", "server_name", "buffer", "batch_size", "timeout", "spool":
			if err := want(1); err != nil {
				return err
			}
		case "header", "resource_attribute", "client_cert":
			if err := want(2); err != nil {
				return err
			}
		case "backoff":
			if err := want(1, 2); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized otlp writer option '%s'", opt)
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
		case "ca":
			w.CA = args[0]
		case "client_cert":
			w.ClientCertificate, w.ClientKey = args[0], args[1]
		case "client_cert_automate":
			w.ClientCertificateAutomate = args[0]
		case "server_name":
			w.ServerName = args[0]
		case "buffer":
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return d.Errf("buffer: want a positive number of entries, got %q", args[0])
			}
			w.Buffer = n
		case "batch_size":
			n, err := size.Parse(args[0], 1<<30)
			if err != nil || n < 1 {
				return d.Errf("batch_size: invalid size %q", args[0])
			}
			w.BatchSize = int(n)
		case "timeout":
			dur, err := caddy.ParseDuration(args[0])
			if err != nil {
				return d.Errf("timeout: %v", err)
			}
			w.Timeout = caddy.Duration(dur)
		case "backoff":
			for i, a := range args {
				dur, err := caddy.ParseDuration(a)
				if err != nil {
					return d.Errf("backoff: %v", err)
				}
				if i == 0 {
					w.BackoffMin = caddy.Duration(dur)
				} else {
					w.BackoffMax = caddy.Duration(dur)
				}
			}
		case "spool":
			sp, err := forward.UnmarshalSpool(d, args[0])
			if err != nil {
				return err
			}
			w.Spool = sp
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Writer)(nil)

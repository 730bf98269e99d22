package kafka

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/internal/size"
)

// UnmarshalCaddyfile sets up the writer from Caddyfile tokens:
//
//	output kafka <broker:port...> {
//		topic                <name|template>
//		fallback_topic       <name>
//		key                  <template>
//		acks                 all|leader|none
//		disable_idempotence
//		compression          zstd|lz4|snappy|gzip|none
//		client_id            <id>
//		tls
//		ca                   <pem-file>
//		client_cert          <cert-file> <key-file>
//		client_cert_automate <name>
//		server_name          <name>
//		sasl                 plain|scram-sha-256|scram-sha-512 <username> <password>
//		max_message_bytes    <size>
//		auto_create_topics
//		dial_timeout         <duration>
//		delivery_timeout     <duration>
//		spool <folder> {
//			max_size <size>
//			on_full  block|drop_oldest|drop_newest
//			fsync    every|<duration>
//		}
//		buffer               <entries>
//		backoff              <min> [<max>]
//	}
func (w *Writer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume writer name
	w.Brokers = d.RemainingArgs()
	if len(w.Brokers) == 0 {
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
		case "disable_idempotence", "tls", "auto_create_topics":
			want = 0
		case "sasl":
			want = 3
		case "topic", "fallback_topic", "key", "acks", "compression", "client_id", "max_message_bytes", "dial_timeout", "delivery_timeout":
		default:
			return d.Errf("unrecognized kafka writer option '%s'", opt)
		}
		if len(args) != want {
			return d.ArgErr()
		}
		switch opt {
		case "topic":
			w.Topic = args[0]
		case "fallback_topic":
			w.FallbackTopic = args[0]
		case "key":
			w.Key = args[0]
		case "acks":
			w.Acks = args[0]
		case "disable_idempotence":
			w.DisableIdempotence = true
		case "compression":
			w.Compression = args[0]
		case "client_id":
			w.ClientID = args[0]
		case "tls":
			w.TLS = true
		case "auto_create_topics":
			w.AutoCreateTopics = true
		case "sasl":
			w.SASL = &SASL{Mechanism: args[0], Username: args[1], Password: args[2]}
		case "max_message_bytes":
			n, err := size.Parse(args[0], 1<<30)
			if err != nil || n < 1 {
				return d.Errf("max_message_bytes: invalid size %q", args[0])
			}
			w.MaxMessageBytes = int(n)
		case "dial_timeout", "delivery_timeout":
			dur, err := caddy.ParseDuration(args[0])
			if err != nil {
				return d.Errf("%s: %v", opt, err)
			}
			if opt == "dial_timeout" {
				w.DialTimeout = caddy.Duration(dur)
			} else {
				w.DeliveryTimeout = caddy.Duration(dur)
			}
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Writer)(nil)

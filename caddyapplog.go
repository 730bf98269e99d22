// Package caddyapplog is caddy-applog, a Caddy plugin that makes Caddy the
// log hub of a web stack. Importing it registers every module of the
// plugin with Caddy; build Caddy with it through xcaddy:
//
//	xcaddy build --with github.com/caddy-applog/caddy-applog
//
// The manual is in the docs folder of the repository.
package caddyapplog

import (
	// The Caddyfile's applog global option.
	_ "github.com/caddy-applog/caddy-applog/caddyfile"

	// Ways in: the log_ingest handler and the network receivers.
	_ "github.com/caddy-applog/caddy-applog/handlers/ingest"
	_ "github.com/caddy-applog/caddy-applog/module/receiver/pysocket"
	_ "github.com/caddy-applog/caddy-applog/module/receiver/syslog"

	// The app: apps, facilities, signatures.
	_ "github.com/caddy-applog/caddy-applog/module/applog"

	// Encoders and writers, for Caddy's log blocks.
	_ "github.com/caddy-applog/caddy-applog/module/encoders/access"
	_ "github.com/caddy-applog/caddy-applog/module/encoders/syslog"
	_ "github.com/caddy-applog/caddy-applog/writers/kafka"
	_ "github.com/caddy-applog/caddy-applog/writers/otlp"
	_ "github.com/caddy-applog/caddy-applog/writers/rotate"
	_ "github.com/caddy-applog/caddy-applog/writers/syslog"
	_ "github.com/caddy-applog/caddy-applog/writers/tls"

	// Views: the status page, the admin route and caddy applog tail.
	_ "github.com/caddy-applog/caddy-applog/handlers/logstatus"
)

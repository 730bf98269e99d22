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
	// HTTP handlers, with their Caddyfile directives, and the admin
	// route and command of log_status.
	_ "github.com/caddy-applog/caddy-applog/handlers/ingest"
	_ "github.com/caddy-applog/caddy-applog/handlers/logstatus"
	// Log writers and their encoders.
	_ "github.com/caddy-applog/caddy-applog/writers/access"
	_ "github.com/caddy-applog/caddy-applog/writers/rotate"
	_ "github.com/caddy-applog/caddy-applog/writers/syslog"
	_ "github.com/caddy-applog/caddy-applog/writers/tls"
	// The applog app and its network receivers.
	_ "github.com/caddy-applog/caddy-applog/module/applog"
	_ "github.com/caddy-applog/caddy-applog/module/receiver/pysocket"
	_ "github.com/caddy-applog/caddy-applog/module/receiver/syslog"
)

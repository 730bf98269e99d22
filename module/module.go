// Package module registers every module of caddy-applog with Caddy.
// Import it for its side effects, in a Caddy main or with xcaddy:
//
//	xcaddy build --with github.com/caddy-applog/caddy-applog/module
package module

import (
	// Caddyfile syntax: the applog global option and directives.
	_ "github.com/caddy-applog/caddy-applog/caddyfile"
	// HTTP handlers.
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

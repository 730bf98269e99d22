// Command caddy is Caddy with the caddy-applog plugin compiled in, so
// `go run ./cmd/caddy run --config examples/Caddyfile` works from a clone
// without xcaddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules, as in the official build.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// Every module of caddy-applog.
	_ "github.com/caddy-applog/caddy-applog"
)

func main() {
	caddycmd.Main()
}

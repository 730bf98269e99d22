// Package caddyfile registers caddy-applog's Caddyfile syntax: the
// `applog` global option and the `log_ingest` directive. The parsing
// itself lives next to each module, in its UnmarshalCaddyfile method.
package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-applog/caddy-applog/handlers/ingest"
	"github.com/caddy-applog/caddy-applog/handlers/logstatus"
	"github.com/caddy-applog/caddy-applog/module/applog"
	"github.com/caddy-applog/caddy-applog/module/intake"
)

func init() {
	httpcaddyfile.RegisterGlobalOption(intake.AppName, parseApplog)
	httpcaddyfile.RegisterHandlerDirective("log_ingest", parseLogIngest)
	// log_ingest answers the request itself, like respond.
	httpcaddyfile.RegisterDirectiveOrder("log_ingest", httpcaddyfile.Before, "respond")
	httpcaddyfile.RegisterHandlerDirective("log_status", parseLogStatus)
	httpcaddyfile.RegisterDirectiveOrder("log_status", httpcaddyfile.Before, "respond")
}

// parseApplog sets up the applog app from the global option:
//
//	{
//		applog {
//			...
//		}
//	}
func parseApplog(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("applog global option specified more than once")
	}
	app := new(applog.App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{
		Name:  intake.AppName,
		Value: caddyconfig.JSON(app, nil),
	}, nil
}

// parseLogStatus sets up a log_status handler from the directive.
func parseLogStatus(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(logstatus.LogStatus)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// parseLogIngest sets up a log_ingest handler from the directive.
func parseLogIngest(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(ingest.Ingest)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

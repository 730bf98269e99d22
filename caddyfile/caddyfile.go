// Package caddyfile registers the `applog` global option, which sets up
// the applog app; the app parses its own block in UnmarshalCaddyfile.
// The plugin's directives, log_ingest and log_status, are registered by
// their handlers' packages, beside each module, as Caddy's own are.
// testdata holds the golden adaptations of the whole syntax.
package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/caddy-applog/caddy-applog/module/applog"
	"github.com/caddy-applog/caddy-applog/module/intake"
)

func init() {
	httpcaddyfile.RegisterGlobalOption(intake.AppName, parseApplog)
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

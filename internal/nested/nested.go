// Package nested parses an encoder named inside another module's
// Caddyfile block (`wrap json`, `fallback console { ... }`), as Caddy's
// own wrapping encoders do, into the JSON that module's field holds.
package nested

import (
	"encoding/json"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap/zapcore"
)

// Encoder reads `<name> [<args>] [{ ... }]` at the dispenser's position
// (after the subdirective) and returns the encoder module
// caddy.logging.encoders.<name> as JSON with its "format" key.
func Encoder(d *caddyfile.Dispenser) (json.RawMessage, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	name := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, "caddy.logging.encoders."+name)
	if err != nil {
		return nil, err
	}
	enc, ok := unm.(zapcore.Encoder)
	if !ok {
		return nil, d.Errf("module %s (%T) is not an encoder", name, unm)
	}
	return caddyconfig.JSONModuleObject(enc, "format", name, nil), nil
}

//go:build tools

// Package tools records the xcaddy dependency of this module.
package tools

import _ "github.com/caddyserver/xcaddy/cmd/xcaddy"

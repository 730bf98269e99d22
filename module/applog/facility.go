package applog

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dustin/go-humanize"

	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/status"
)

// Facility holds the rules for the records of one app or one sub-module
// of an app. Unset options inherit from the nearest configured ancestor
// (`myapp:web.requests` inherits from `myapp:web`, then from `myapp`),
// the way Python's loggers inherit their level.
type Facility struct {
	// The lowest level accepted; records below it are counted as
	// filtered and not emitted. A Python level name or number, a syslog
	// severity, or a slog level ("debug", "INFO", "warning", "25",
	// "notice"). Default: everything.
	Level string `json:"level,omitempty"`

	// Shared secrets for HMAC-SHA256 request signatures. When set, every
	// record of this facility must arrive signed with one of them (more
	// than one allows rotating secrets without downtime). Placeholders
	// such as `{env.APPLOG_SECRET}` are replaced when the config loads.
	Secrets []string `json:"secrets,omitempty"`

	// Messages longer than this many bytes are cut at a UTF-8 boundary
	// and the entry gets `"truncated": true`. Default: 65536.
	MaxMessageSize int `json:"max_message_size,omitempty"`
}

// DefaultMaxMessageSize matches syslog-ng's default log-msg-size.
const DefaultMaxMessageSize = 64 * 1024

// rules are a facility's effective settings, inheritance resolved.
type rules struct {
	name      string // "myapp" or "myapp:web.requests", for messages
	minLevel  int
	hasLevel  bool
	secrets   [][]byte
	maxMsg    int
	counters  *status.Counters // process-wide, so they survive reloads
	loggerFor sync.Map         // facility → "applog.<app>[.<facility>]"
	nLoggers  atomic.Int32
}

// appRules are every configured facility of one app.
type appRules struct {
	root *rules
	subs map[string]*rules // by dotted facility
}

// lookup returns the rules of the most specific configured facility that
// is facility itself or one of its ancestors.
func (ar *appRules) lookup(facility string) *rules {
	for f := facility; f != ""; {
		if r, ok := ar.subs[f]; ok {
			return r
		}
		i := strings.LastIndexByte(f, '.')
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return ar.root
}

// maxCachedLoggerNames bounds the logger-name cache of one facility, as
// facility names can come from clients.
const maxCachedLoggerNames = 4096

// loggerName returns "applog.<app>[.<facility>]", cached.
func (r *rules) loggerName(app, facility string) string {
	if v, ok := r.loggerFor.Load(facility); ok {
		return v.(string)
	}
	name := intake.AppName + "." + app
	if facility != "" {
		name += "." + facility
	}
	if r.nLoggers.Load() < maxCachedLoggerNames {
		// A copy: facility may point into the sender's buffer (Submit).
		if _, loaded := r.loggerFor.LoadOrStore(strings.Clone(facility), name); !loaded {
			r.nLoggers.Add(1)
		}
	}
	return name
}

// splitFacilityName splits "myapp:web.requests" into its app and facility.
func splitFacilityName(s string) (app, facility string, err error) {
	app, facility, _ = strings.Cut(s, ":")
	if !intake.ValidApp(app) {
		return "", "", fmt.Errorf("facility %q: app name must be letters, digits, '_' or '-'", s)
	}
	if facility != intake.FacilityFromLogger(facility) || strings.Contains(s, ":") && facility == "" {
		return "", "", fmt.Errorf("facility %q: sub-module must be dot-separated names of letters, digits, '_' or '-'", s)
	}
	return app, facility, nil
}

// parseSize reads sizes such as "8KiB", "64kb" or "65536".
func parseSize(s string) (int, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, err
	}
	if n > 1<<30 {
		return 0, fmt.Errorf("size %s is larger than 1GiB", s)
	}
	return int(n), nil
}

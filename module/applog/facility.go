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
	// than one allows rotating secrets without downtime). A secret that
	// is a whole `{env.NAME}` or `{file.PATH}` placeholder is replaced
	// when the config loads (a file's final newline dropped); any other
	// value with `{...}` in it is a config error, never taken literally
	// nor half replaced, and so is a secret that is or becomes empty.
	Secrets []string `json:"secrets,omitempty"`

	// Messages longer than this many bytes are cut at a UTF-8 boundary
	// and the entry gets `"truncated": true`. Default: 65536.
	MaxMessageSize int `json:"max_message_size,omitempty"`

	// The most bytes a record's content may take in its entry: the
	// message, logger name, level name, facility (counted twice: it is
	// in the entry's logger name too) and every attribute's key and
	// value, JSON-escaped, nested documents whole. A record is also
	// bounded by the bytes it arrived in, to 3 times as many (but no
	// less than 512), so no sender can make an entry larger than what
	// it sent, whatever the door. Over the bound, content is cut (see
	// intake.Record.Bound) and the entry gets `"truncated": true`.
	// Default: 65536.
	MaxRecordSize int `json:"max_record_size,omitempty"`
}

// DefaultMaxMessageSize matches syslog-ng's default log-msg-size.
const DefaultMaxMessageSize = 64 * 1024

// DefaultMaxRecordSize is the default max_record_size.
const DefaultMaxRecordSize = 64 * 1024

// rules are a facility's effective settings, inheritance resolved.
type rules struct {
	name      string // "myapp" or "myapp:web.requests", for messages
	minLevel  int
	hasLevel  bool
	secrets   [][]byte
	maxMsg    int
	maxRecord int
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

// loggerName returns "applog.<app>[.<facility>]", cached. The cache is
// keyed by facility, and one rules may serve many apps (every unknown
// app shares one): a cached name is used only if it is app's.
func (r *rules) loggerName(app, facility string) string {
	if v, ok := r.loggerFor.Load(facility); ok {
		if name := v.(string); isLoggerName(name, app, facility) {
			return name
		}
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

// isLoggerName reports whether name is "applog.<app>[.<facility>]".
func isLoggerName(name, app, facility string) bool {
	rest, ok := strings.CutPrefix(name, intake.AppName+".")
	if !ok {
		return false
	}
	rest, ok = strings.CutPrefix(rest, app)
	if !ok {
		return false
	}
	if facility == "" {
		return rest == ""
	}
	return len(rest) == len(facility)+1 && rest[0] == '.' && rest[1:] == facility
}

// splitFacilityName splits "myapp:web.requests" into its app and facility.
func splitFacilityName(s string) (app, facility string, err error) {
	app, facility, _ = strings.Cut(s, ":")
	if err := intake.CheckApp(app); err != nil {
		return "", "", fmt.Errorf("facility %q: %w", s, err)
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

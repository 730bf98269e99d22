package applog

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap/zapcore"

	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/status"
)

// Facility holds the rules for the records of one app or one sub-module
// of an app. Unset options inherit from the nearest configured ancestor
// (`myapp:web.requests` inherits from `myapp:web`, then from `myapp`),
// the way Python's loggers inherit their level.
type Facility struct {
	// The lowest level accepted: a Python, syslog or slog level name, or a
	// number on Python's scale; lower records are filtered. Default: all.
	Level string `json:"level,omitempty"`

	// Shared secrets: records must arrive signed (HMAC-SHA256) with one of
	// them. `{env.NAME}` and `{file.PATH}` are read at load. Default: none.
	Secrets []string `json:"secrets,omitempty"`

	// Longer messages are cut at a UTF-8 boundary and the entry gets
	// `"truncated": true`. Default: 65536.
	MaxMessageSize int `json:"max_message_size,omitempty"`

	// The most bytes a record's content may take in its entry, and at
	// most 3 per byte it arrived in (512 minimum). Default: 65536.
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
	routes    routes           // by logger name
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

// maxCachedLoggerNames bounds the routes cached for one facility's
// rules, as facility names can come from clients.
const maxCachedLoggerNames = 4096

// A route is where the records of one app and facility go: their logger
// name, and the core of just the log blocks that take that name.
type route struct {
	name string // "applog.<app>[.<facility>]"
	core zapcore.Core
}

// routes caches the routes of one facility's rules by logger name. One
// rules may serve many apps (every unknown app shares one), so the key
// is the whole name. Reads take no lock: the map is replaced, never
// changed, when a route is added (at most maxCachedLoggerNames times),
// so the receivers of a busy server do not contend on a lock's counter
// for every record. A map index by string(bytes) built on the stack does
// not allocate.
type routes struct {
	m  atomic.Pointer[map[string]*route]
	mu sync.Mutex // serialises additions
}

// route returns the route of app's facility. Beyond the cache's bound,
// records go through fallback, the tee of every log block that takes
// some applog logger, whose filters then pick by name.
func (r *rules) route(app, facility string, build func(name string) zapcore.Core, fallback zapcore.Core) *route {
	var buf [96]byte
	key := append(append(buf[:0], intake.AppName+"."...), app...)
	if facility != "" {
		key = append(append(key, '.'), facility...)
	}
	rs := &r.routes
	var m map[string]*route
	if p := rs.m.Load(); p != nil {
		m = *p
		if rt := m[string(key)]; rt != nil {
			return rt
		}
	}
	name := string(key)
	if len(m) >= maxCachedLoggerNames {
		return &route{name: name, core: fallback}
	}
	// Built outside the lock: Caddy's Logger walks every log block.
	rt := &route{name: name, core: build(name)}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	old := rs.m.Load()
	if old != nil {
		if cached := (*old)[name]; cached != nil {
			return cached
		}
	}
	next := make(map[string]*route, len(m)+1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[name] = rt
	rs.m.Store(&next)
	return rt
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

func defaultRules(name string) *rules {
	return &rules{name: name, maxMsg: DefaultMaxMessageSize, maxRecord: DefaultMaxRecordSize, counters: status.Facility(name)}
}

// resolve returns f's effective rules, inheriting unset options from parent.
func (f *Facility) resolve(name string, parent *rules) (*rules, error) {
	r := &rules{
		name:      name,
		minLevel:  parent.minLevel,
		hasLevel:  parent.hasLevel,
		secrets:   parent.secrets,
		maxMsg:    parent.maxMsg,
		maxRecord: parent.maxRecord,
		counters:  status.Facility(name),
	}
	if f == nil {
		return r, nil
	}
	if f.Level != "" {
		n, ok := intake.ParseLevel(f.Level)
		if !ok {
			return nil, fmt.Errorf("facility %s: unknown level %q", name, f.Level)
		}
		r.minLevel, r.hasLevel = n, true
	}
	if len(f.Secrets) > 0 {
		r.secrets = nil
		for _, s := range f.Secrets {
			secret, err := secretValue(s)
			if err != nil {
				return nil, fmt.Errorf("facility %s: %w", name, err)
			}
			r.secrets = append(r.secrets, []byte(secret))
		}
	}
	if f.MaxMessageSize < 0 {
		return nil, fmt.Errorf("facility %s: max_message_size must not be negative", name)
	}
	if f.MaxMessageSize > 0 {
		r.maxMsg = f.MaxMessageSize
	}
	if f.MaxRecordSize < 0 {
		return nil, fmt.Errorf("facility %s: max_record_size must not be negative", name)
	}
	if f.MaxRecordSize > 0 {
		r.maxRecord = f.MaxRecordSize
	}
	return r, nil
}

// Package applog is the applog Caddy app: the one place where log records
// from every door (the log_ingest handler, the syslog and python_socket
// receivers) are checked against per-app facility rules and emitted into
// Caddy's own logging, where `log` blocks route them through any encoder
// into any writer.
package applog

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-applog/caddy-applog/internal/lifecycle"
	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/status"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App is where every log record ends up, whatever door it came in by
// (the log_ingest handler, the syslog and python_socket receivers): it
// checks the record against the rules of its app and facility (level,
// signature, size limits), counts it, and emits it into Caddy's logging
// as logger `applog.<app>.<facility>`, for `log` blocks to route with
// `include applog.<app>`. Entries keep the record's own time and message.
// Records of apps that nothing names are refused unless accept_unknown is
// set; the app name `receivers` is reserved for the receivers' own logs.
//
// The manual is docs/app.md; signed requests are in docs/signatures.md.
type App struct {
	// Rules per facility, keyed by `<app>` or `<app>:<sub.module>`; unset
	// options inherit from the nearest configured ancestor.
	Facilities map[string]*Facility `json:"facilities,omitempty"`

	// Accept records of apps no facility, handler or receiver names, with
	// no level threshold and no signature. Default: false (403).
	AcceptUnknown bool `json:"accept_unknown,omitempty"`

	// How far a signature's time may be from the clock, and how long a
	// used signature is remembered to refuse replays. Default: 5m.
	ReplayWindow caddy.Duration `json:"replay_window,omitempty"`

	// How far a record's own time may be from its arrival before the
	// entry gets a `received` field with the arrival time. Default: 5m.
	MaxClockSkew caddy.Duration `json:"max_clock_skew,omitempty"`

	// Network receivers (syslog, python_socket) feeding the same rules.
	ReceiversRaw []json.RawMessage `json:"receivers,omitempty" caddy:"namespace=applog.receivers inline_key=receiver"`

	// How many recent records are kept for the log_status page and
	// `caddy applog tail`, while either is in use. Default: 300.
	RecentRecords int `json:"recent_records,omitempty"`

	apps       atomic.Pointer[map[string]*appRules]
	unknown    *appRules
	declareMu  sync.Mutex
	replay     *replayCache
	replayHeld bool                           // a use of replayPool, until Cleanup
	core       zapcore.Core                   // every log block that takes an applog logger
	coreOf     func(name string) zapcore.Core // the log blocks that take one logger name
	logger     *zap.Logger
	fieldsPool sync.Pool
	keepRecent bool
	receivers  []intake.Receiver
	writeErrs  *writeErrors
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  intake.AppName,
		New: func() caddy.Module { return new(App) },
	}
}

// replayPool keeps one replay cache alive across config reloads.
var replayPool = lifecycle.NewPool[*replayCache]()

const replayKey = "replay"

// Provision sets up the app.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.core = a.logger.Core()
	a.coreOf = func(name string) zapcore.Core { return ctx.Logger(loggerModule(name)).Core() }
	a.writeErrs = &writeErrors{logger: a.logger, now: time.Now}
	if a.ReplayWindow <= 0 {
		a.ReplayWindow = caddy.Duration(5 * time.Minute)
	}
	if a.MaxClockSkew <= 0 {
		a.MaxClockSkew = caddy.Duration(5 * time.Minute)
	}
	if a.RecentRecords < 0 {
		return fmt.Errorf("recent_records must not be negative")
	}
	if a.RecentRecords == 0 {
		a.RecentRecords = status.DefaultRecent
	}
	// Caddy creates a registry per config; our counters are process-wide.
	if err := ctx.GetMetricsRegistry().Register(status.Collector{}); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	apps := make(map[string]*appRules)
	// Parents before children, so that children inherit resolved rules.
	names := make([]string, 0, len(a.Facilities))
	for name := range a.Facilities {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) < len(names[j]) })
	for _, name := range names {
		app, facility, err := splitFacilityName(name)
		if err != nil {
			return err
		}
		ar := apps[app]
		if ar == nil {
			ar = &appRules{root: defaultRules(app), subs: make(map[string]*rules)}
			apps[app] = ar
		}
		parent := ar.lookup(facility)
		if facility == "" {
			parent = ar.root
		}
		r, err := a.Facilities[name].resolve(name, parent)
		if err != nil {
			return err
		}
		if facility == "" {
			ar.root = r
		} else {
			ar.subs[facility] = r
		}
	}
	a.apps.Store(&apps)
	if a.AcceptUnknown {
		a.unknown = &appRules{root: defaultRules("(unknown apps)")}
	}

	replay, err := replayPool.Acquire(replayKey, func() (*replayCache, error) {
		return newReplayCache(filepath.Join(caddy.AppDataDir(), intake.AppName)), nil
	})
	if err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	a.replay, a.replayHeld = replay, true

	if a.ReceiversRaw != nil {
		mods, err := ctx.LoadModule(a, "ReceiversRaw")
		if err != nil {
			return fmt.Errorf("loading receivers: %w", err)
		}
		for _, m := range mods.([]any) {
			r, ok := m.(intake.Receiver)
			if !ok {
				return fmt.Errorf("module %T is not a receiver", m)
			}
			a.receivers = append(a.receivers, r)
		}
	}
	return nil
}

// Start starts the app. The ring of recent records is sized here, after
// every module of the config was provisioned (and a log_status handler
// had its chance to ask for it), so a reload keeps the page's records.
func (a *App) Start() error {
	size := 0
	if a.keepRecent {
		size = a.RecentRecords
	}
	status.SetFollowSize(a.RecentRecords) // for `caddy applog tail`
	status.SetRecentSize(size)
	if a.signed() {
		// Now rather than at the first signed request, so that a
		// journal that cannot be opened stops the config from loading.
		// Not in Provision: `caddy validate` provisions too, and must
		// not rewrite the journal of a running server.
		if err := a.replay.openNow(); err != nil {
			return err
		}
	}
	for i, r := range a.receivers {
		if err := r.Start(a); err != nil {
			for _, started := range a.receivers[:i] {
				_ = started.Stop()
			}
			return err
		}
	}
	return nil
}

// signed reports whether any facility requires signatures.
func (a *App) signed() bool {
	for _, ar := range *a.apps.Load() {
		if len(ar.root.secrets) > 0 {
			return true
		}
		for _, r := range ar.subs {
			if len(r.secrets) > 0 {
				return true
			}
		}
	}
	return false
}

// KeepRecent asks the app to keep its most recent records for the
// status page. The log_status handler calls it while provisioning.
func (a *App) KeepRecent() { a.keepRecent = true }

// Stop stops the app's receivers. Their open connections go on feeding
// the config that replaced this one (see module/receiver).
func (a *App) Stop() error {
	var errs []error
	for _, r := range a.receivers {
		if err := r.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Cleanup releases the replay cache, if Provision got that far.
func (a *App) Cleanup() error {
	if !a.replayHeld {
		return nil
	}
	a.replayHeld = false
	return replayPool.Release(replayKey)
}

// DeclareApp makes records of app acceptable: a handler or receiver whose
// configuration names an app declares it, as the operator chose it.
// Called while the config is provisioned, before any record arrives.
func (a *App) DeclareApp(app string) {
	a.declareMu.Lock()
	defer a.declareMu.Unlock()
	old := *a.apps.Load()
	if _, ok := old[app]; ok {
		return
	}
	apps := make(map[string]*appRules, len(old)+1)
	for k, v := range old {
		apps[k] = v
	}
	apps[app] = &appRules{root: defaultRules(app)}
	a.apps.Store(&apps)
}

// KnowsApp reports whether records of app are accepted.
func (a *App) KnowsApp(app string) bool {
	_, ok := (*a.apps.Load())[app]
	return ok || a.AcceptUnknown
}

// Interface guards
var (
	_ caddy.App             = (*App)(nil)
	_ caddy.Provisioner     = (*App)(nil)
	_ caddy.CleanerUpper    = (*App)(nil)
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ intake.Intake         = (*App)(nil)
)

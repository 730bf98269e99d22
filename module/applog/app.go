// Package applog is the applog Caddy app: the one place where log records
// from every door (the log_ingest handler, the syslog and python_socket
// receivers) are checked against per-app facility rules and emitted into
// Caddy's own logging, where `log` blocks route them through any encoder
// into any writer.
package applog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-applog/caddy-applog/internal/lifecycle"
	"github.com/caddy-applog/caddy-applog/internal/size"
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
	replayHeld bool // a use of replayPool, until Cleanup
	core       zapcore.Core
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

// secretValue returns the secret a configured value stands for. Only a
// whole-value placeholder is replaced: `{env.NAME}` by the environment
// variable, `{file.PATH}` by the file's contents (without a final
// newline), as Caddy's replacer does. Any other value with braces is an
// error rather than a literal: a secret half made of a placeholder
// (`key-{env.X}`) or a placeholder the replacer would quietly expand to
// a public value (`{system.hostname}`) or drop (`abc{def}` became `abc`)
// is weaker than its operator thinks. To use a secret with braces, put
// it in a file or a variable.
func secretValue(s string) (string, error) {
	key, err := secretPlaceholder(s)
	if err != nil || key == "" {
		return s, err
	}
	v, _ := caddy.NewReplacer().GetString(key)
	if v == "" {
		return "", fmt.Errorf("secret is empty: %s is unset, or names a missing or empty file", s)
	}
	return v, nil
}

// secretPlaceholder returns the placeholder s is ("env.X", "file.X"), or
// "" for a literal secret, or why s is neither.
func secretPlaceholder(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("secret is empty")
	}
	if inner, ok := strings.CutPrefix(s, "{"); ok && strings.HasSuffix(inner, "}") && !strings.ContainsAny(inner[:len(inner)-1], "{}") {
		key := inner[:len(inner)-1]
		if strings.HasPrefix(key, "env.") && len(key) > len("env.") || strings.HasPrefix(key, "file.") && len(key) > len("file.") {
			return key, nil
		}
	}
	if i := strings.IndexByte(s, '{'); i >= 0 && strings.IndexByte(s[i:], '}') > 0 {
		// The value is not quoted: it may be the secret itself.
		return "", fmt.Errorf("a secret has braces like a placeholder: only a whole-value {env.NAME} or {file.PATH} is replaced, and other braces are refused rather than taken literally; put a secret with braces in a file or an environment variable")
	}
	return "", nil
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

// Submit checks the batch against the rules of each record's facility
// and emits it. It is all-or-nothing: every record is resolved and the
// signature verified before the first one is emitted.
func (a *App) Submit(_ context.Context, b *intake.Batch) (intake.Result, error) {
	var res intake.Result
	now := b.Received
	if now.IsZero() {
		now = time.Now()
	}
	src := status.Source(b.Source)
	skew := time.Duration(a.MaxClockSkew)
	apps := *a.apps.Load()
	plan := make([]*rules, len(b.Records))
	var needed []*rules
	for i := range b.Records {
		rec := &b.Records[i]
		ar, err := a.appFor(apps, rec.App, b.Source, i, len(b.Records))
		if err != nil {
			src.Rejected.Add(int64(len(b.Records)))
			return res, err
		}
		if rec.Facility == "" {
			rec.Facility = intake.FacilityFromLogger(rec.Logger)
		}
		r := ar.lookup(rec.Facility)
		plan[i] = r
		if len(r.secrets) > 0 && !containsRules(needed, r) {
			needed = append(needed, r)
		}
	}
	if err := a.verify(b, needed, now); err != nil {
		src.Rejected.Add(int64(len(b.Records)))
		for _, r := range needed {
			r.counters.Rejected.Add(1)
		}
		return res, err
	}
	var recent []status.Entry
	if n := status.RecentSize(); n > 0 {
		recent = make([]status.Entry, 0, min(len(b.Records), n))
	}
	for i := range b.Records {
		rec, r := &b.Records[i], plan[i]
		if r.hasLevel && rec.LevelNo < r.minLevel {
			r.counters.Filtered.Add(1)
			res.Filtered++
			continue
		}
		truncated := truncate(&rec.Message, r.maxMsg)
		if rec.Bound(rec.Limit(r.maxRecord)) {
			truncated = true
		}
		if truncated {
			r.counters.Truncated.Add(1)
			res.Truncated++
		}
		var received time.Time
		if d := rec.Time.Sub(now); d > skew || d < -skew {
			received = now
		}
		level := a.emit(rec, r, truncated, received)
		r.counters.Accept(now, 1)
		res.Accepted++
		if recent != nil {
			e := status.Entry{
				Time: rec.Time, Level: level.String(), LevelNo: rec.LevelNo, LevelName: rec.LevelName,
				App: rec.App, Facility: rec.Facility, Host: rec.Host, Logger: rec.Logger,
				Message: rec.Message, Source: b.Source,
			}
			// Only the newest records fit in the ring: write circularly.
			if len(recent) < cap(recent) {
				recent = append(recent, e)
			} else {
				recent[(res.Accepted-1)%cap(recent)] = e
			}
		}
	}
	if k := res.Accepted % max(cap(recent), 1); res.Accepted > cap(recent) && k != 0 {
		recent = append(recent[k:len(recent):len(recent)], recent[:k]...) // oldest first
	}
	status.RecordBatch(recent)
	src.Accept(now, res.Accepted)
	return res, nil
}

// appFor returns the rules of app, or an error fit for the sender of a
// batch that came in by source.
func (a *App) appFor(apps map[string]*appRules, app, source string, i, n int) (*appRules, error) {
	if ar, ok := apps[app]; ok {
		return ar, nil
	}
	where := ""
	if n > 1 {
		where = fmt.Sprintf("record %d: ", i+1)
	}
	if app == "" {
		return nil, intake.Errorf(http.StatusBadRequest, "%snames no app (%s)", where, howToNameApp(source))
	}
	if err := intake.CheckApp(app); err != nil {
		return nil, intake.Errorf(http.StatusBadRequest, "%sinvalid app name %q: %v", where, app, err)
	}
	if a.AcceptUnknown {
		return a.unknown, nil
	}
	return nil, intake.Errorf(http.StatusForbidden, "%sunknown app %q: configure `facility %s` in the applog app, or set accept_unknown", where, app, app)
}

// howToNameApp says how a sender names its app on the door source names.
func howToNameApp(source string) string {
	door, _, _ := strings.Cut(source, "/")
	switch door {
	case "log_ingest":
		return "set it in the handler (`log_ingest <app>`), the `app` query parameter or an `app` field"
	case "python_socket":
		return "set `app` in the python_socket receiver, or send an `app` attribute (`extra={\"app\": \"myapp\"}`, or a logging.Filter that sets record.app)"
	}
	// The syslog receiver never gets here: it keeps a message that names
	// no app under its fallback_app.
	return "set `app` in the " + door + " receiver"
}

func containsRules(list []*rules, r *rules) bool {
	for _, x := range list {
		if x == r {
			return true
		}
	}
	return false
}

// truncate cuts *s to at most max bytes without splitting a UTF-8
// sequence, reporting whether it did.
func truncate(s *string, max int) bool {
	if max <= 0 || len(*s) <= max {
		return false
	}
	*s = intake.CutUTF8(*s, max)
	return true
}

// emit writes rec straight to the logging core with its own time and
// logger name: going around zap.Logger avoids its Panic/Fatal hooks and a
// Named() logger per facility.
func (a *App) emit(rec *intake.Record, r *rules, truncated bool, received time.Time) zapcore.Level {
	ent := zapcore.Entry{
		LoggerName: r.loggerName(rec.App, rec.Facility),
		Time:       rec.Time,
		Level:      intake.ZapLevel(rec.LevelNo),
		Message:    rec.Message,
	}
	ce := a.core.Check(ent, nil)
	if ce == nil {
		return ent.Level
	}
	ce.ErrorOutput = a.writeErrs
	fp, _ := a.fieldsPool.Get().(*[]zap.Field)
	if fp == nil {
		fp = new([]zap.Field)
	}
	fields := rec.AppendFields((*fp)[:0], truncated, received)
	ce.Write(fields...)
	clear(fields)
	*fp = fields[:0]
	a.fieldsPool.Put(fp)
	return ent.Level
}

// UnmarshalCaddyfile sets up the app from the `applog` global option:
//
//	applog {
//		accept_unknown
//		replay_window <duration>
//		max_clock_skew <duration>
//		recent_records <n>
//		syslog        <address...> { ... }
//		python_socket <address...> { ... }
//		facility <app>[:<sub.module>] {
//			level <level>
//			secret <secret...>
//			max_message_size <size>
//			max_record_size <size>
//		}
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "accept_unknown":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.AcceptUnknown = true
		case "replay_window", "max_clock_skew":
			opt := d.Val()
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return d.Errf("%s: want a positive duration, got %q", opt, d.Val())
			}
			if opt == "replay_window" {
				a.ReplayWindow = caddy.Duration(dur)
			} else {
				a.MaxClockSkew = caddy.Duration(dur)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		case "recent_records":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n <= 0 {
				return d.Errf("recent_records: want a positive integer, got %q", d.Val())
			}
			a.RecentRecords = n
			if d.NextArg() {
				return d.ArgErr()
			}
		case "syslog", "python_socket":
			name := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "applog.receivers."+name)
			if err != nil {
				return err
			}
			a.ReceiversRaw = append(a.ReceiversRaw, caddyconfig.JSONModuleObject(unm, "receiver", name, nil))
		case "facility":
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			if _, _, err := splitFacilityName(name); err != nil {
				return d.Err(err.Error())
			}
			if _, dup := a.Facilities[name]; dup {
				return d.Errf("facility %s is configured twice", name)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			f := new(Facility)
			if err := f.unmarshalCaddyfile(d); err != nil {
				return err
			}
			if a.Facilities == nil {
				a.Facilities = make(map[string]*Facility)
			}
			a.Facilities[name] = f
		default:
			return d.Errf("unrecognized applog option '%s'", d.Val())
		}
	}
	return nil
}

func (f *Facility) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "level":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if _, ok := intake.ParseLevel(d.Val()); !ok {
				return d.Errf("unknown level %q", d.Val())
			}
			f.Level = d.Val()
		case "secret":
			f.Secrets = d.RemainingArgs()
			if len(f.Secrets) == 0 {
				return d.ArgErr()
			}
			for _, s := range f.Secrets {
				if _, err := secretPlaceholder(s); err != nil {
					return d.Err(err.Error())
				}
			}
			continue
		case "max_message_size", "max_record_size":
			opt := d.Val()
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := size.Parse(d.Val(), 1<<30)
			if err != nil {
				return d.Errf("%s: %v", opt, err)
			}
			if opt == "max_message_size" {
				f.MaxMessageSize = int(n)
			} else {
				f.MaxRecordSize = int(n)
			}
		default:
			return d.Errf("unrecognized facility option '%s'", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.App             = (*App)(nil)
	_ caddy.Provisioner     = (*App)(nil)
	_ caddy.CleanerUpper    = (*App)(nil)
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ intake.Intake         = (*App)(nil)
)

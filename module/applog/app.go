// Package applog is the applog Caddy app: the one place where log records
// from every door (the log_ingest handler, and later the syslog and
// Python socket receivers) are checked against per-app facility rules
// and emitted into Caddy's own logging, where `log` blocks route them
// through any encoder into any writer.
package applog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/status"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App collects application logs into Caddy's logging. A record of app
// `myapp` whose facility is `web.requests` (by default, the sending
// logger's name) is emitted as logger `applog.myapp.web.requests`, so a
// Caddy `log` block with `include applog.myapp` routes all of that app's
// records, with the encoder and writer of your choice.
//
// Emitted entries keep the record's own timestamp and message, its level
// mapped onto zap's (DEBUG/INFO/WARNING/ERROR as debug/info/warn/error,
// CRITICAL as dpanic, syslog alert as panic and emerg as fatal) and these
// fields: `app`, `facility`, `host`
// (the sender's address as Caddy sees it, after trusted_proxies),
// `logger_name`, `level_name` and `level_no` (as the source sent them),
// and `attrs` (every other attribute of the record).
//
// Records of apps that no facility names, and that no handler names, are
// refused unless `accept_unknown` is set.
type App struct {
	// Rules per facility, keyed by `<app>` or `<app>:<sub.module>`.
	Facilities map[string]*Facility `json:"facilities,omitempty"`

	// Accept records of apps no facility or handler names, with default
	// rules (no level threshold, no signature).
	AcceptUnknown bool `json:"accept_unknown,omitempty"`

	// How far a signature's timestamp may be from the server's clock,
	// and how long a used signature is remembered to refuse replays.
	// Default: 5m.
	ReplayWindow caddy.Duration `json:"replay_window,omitempty"`

	// Network receivers: syslog (UDP, TCP, TLS) and Python's
	// SocketHandler and DatagramHandler, feeding the same rules.
	ReceiversRaw []json.RawMessage `json:"receivers,omitempty" caddy:"namespace=applog.receivers inline_key=receiver"`

	// How many of the most recent records the status page (the
	// log_status handler) shows. They are kept only while a log_status
	// handler is configured. Default: 300.
	RecentRecords int `json:"recent_records,omitempty"`

	apps       atomic.Pointer[map[string]*appRules]
	unknown    *appRules
	declareMu  sync.Mutex
	replay     *replayCache
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
var replayPool = caddy.NewUsagePool()

const replayKey = "replay"

// Provision sets up the app.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.core = a.logger.Core()
	a.writeErrs = &writeErrors{logger: a.logger}
	if a.ReplayWindow <= 0 {
		a.ReplayWindow = caddy.Duration(5 * time.Minute)
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
	repl := caddy.NewReplacer()
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
		r, err := a.Facilities[name].resolve(name, parent, repl)
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

	val, _, err := replayPool.LoadOrNew(replayKey, func() (caddy.Destructor, error) {
		return newReplayCache(), nil
	})
	if err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	a.replay = val.(*replayCache)

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
	return &rules{name: name, maxMsg: DefaultMaxMessageSize, counters: status.Facility(name)}
}

// resolve returns f's effective rules, inheriting unset options from parent.
func (f *Facility) resolve(name string, parent *rules, repl *caddy.Replacer) (*rules, error) {
	r := &rules{
		name:     name,
		minLevel: parent.minLevel,
		hasLevel: parent.hasLevel,
		secrets:  parent.secrets,
		maxMsg:   parent.maxMsg,
		counters: status.Facility(name),
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
			s = repl.ReplaceAll(s, "")
			if s == "" {
				return nil, fmt.Errorf("facility %s: secret is empty (unset environment variable?)", name)
			}
			r.secrets = append(r.secrets, []byte(s))
		}
	}
	if f.MaxMessageSize < 0 {
		return nil, fmt.Errorf("facility %s: max_message_size must not be negative", name)
	}
	if f.MaxMessageSize > 0 {
		r.maxMsg = f.MaxMessageSize
	}
	return r, nil
}

// Start starts the app. The ring of recent records is sized here, after
// every module of the config was provisioned (and a log_status handler
// had its chance to ask for it), so a reload keeps the page's records.
func (a *App) Start() error {
	size := 0
	if a.keepRecent {
		size = a.RecentRecords
	}
	status.SetRecentSize(size)
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

// Cleanup releases the replay cache.
func (a *App) Cleanup() error {
	_, err := replayPool.Delete(replayKey)
	return err
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
	apps := *a.apps.Load()
	plan := make([]*rules, len(b.Records))
	var needed []*rules
	for i := range b.Records {
		rec := &b.Records[i]
		ar, err := a.appFor(apps, rec.App, i, len(b.Records))
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
		if truncated {
			r.counters.Truncated.Add(1)
			res.Truncated++
		}
		level := a.emit(rec, r, truncated)
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

// appFor returns the rules of app, or an error fit for the sender.
func (a *App) appFor(apps map[string]*appRules, app string, i, n int) (*appRules, error) {
	where := ""
	if n > 1 {
		where = fmt.Sprintf("record %d: ", i+1)
	}
	if app == "" {
		return nil, intake.Errorf(http.StatusBadRequest, "%snames no app (set it in the handler, the `app` query parameter or an `app` field)", where)
	}
	if ar, ok := apps[app]; ok {
		return ar, nil
	}
	if !intake.ValidApp(app) {
		return nil, intake.Errorf(http.StatusBadRequest, "%sinvalid app name %q", where, app)
	}
	if a.AcceptUnknown {
		return a.unknown, nil
	}
	return nil, intake.Errorf(http.StatusForbidden, "%sunknown app %q: configure `facility %s` in the applog app, or set accept_unknown", where, app, app)
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
	i := max
	for i > 0 && !utf8.RuneStart((*s)[i]) {
		i--
	}
	*s = (*s)[:i]
	return true
}

// emit writes rec straight to the logging core with its own time and
// logger name: going around zap.Logger avoids its Panic/Fatal hooks and a
// Named() logger per facility.
func (a *App) emit(rec *intake.Record, r *rules, truncated bool) zapcore.Level {
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
	fields := append((*fp)[:0],
		zap.String("app", rec.App),
		zap.String("facility", rec.Facility),
		zap.String("host", rec.Host),
		zap.String("logger_name", rec.Logger),
		zap.String("level_name", rec.LevelName),
		zap.Int("level_no", rec.LevelNo),
	)
	if truncated {
		fields = append(fields, zap.Bool("truncated", true))
	}
	if len(rec.Attrs) > 0 {
		// A pointer into the batch: boxing the slice itself would
		// allocate for every record.
		fields = append(fields, zap.Object("attrs", (*intake.Attrs)(&rec.Attrs)))
	}
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
//		recent_records <n>
//		syslog        <address...> { ... }
//		python_socket <address...> { ... }
//		facility <app>[:<sub.module>] {
//			level <level>
//			secret <secret...>
//			max_message_size <size>
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
		case "replay_window":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("replay_window: %v", err)
			}
			a.ReplayWindow = caddy.Duration(dur)
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
			continue
		case "max_message_size":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := parseSize(d.Val())
			if err != nil {
				return d.Errf("max_message_size: %v", err)
			}
			f.MaxMessageSize = n
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

package applog

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/status"
)

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
	if source == "log_ingest/otlp" {
		return "set the resource attribute service.name (OTEL_SERVICE_NAME), or the app in the handler (`log_ingest <app>`) or the `app` query parameter"
	}
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

// coreFor returns the core of the log blocks that take logger name: the
// ones Caddy's Logger picks for a module of that ID. Caddy's core for the
// whole app offers every entry to every log block that takes any applog
// logger, so a record would cost more with each unrelated block.
func (a *App) coreFor(name string) zapcore.Core {
	if a.coreOf == nil {
		return a.core
	}
	return a.coreOf(name)
}

// loggerModule stands for a facility's logger when asking Caddy for the
// log blocks that take it: Caddy selects them by module ID.
type loggerModule string

func (m loggerModule) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: caddy.ModuleID(m)}
}

// emit writes rec straight to the core of its facility's route with its
// own time and logger name: going around zap.Logger avoids its
// Panic/Fatal hooks.
func (a *App) emit(rec *intake.Record, r *rules, truncated bool, received time.Time) zapcore.Level {
	rt := r.route(rec.App, rec.Facility, a.coreFor, a.core)
	ent := zapcore.Entry{
		LoggerName: rt.name,
		Time:       rec.Time,
		Level:      intake.ZapLevel(rec.LevelNo),
		Message:    rec.Message,
	}
	ce := rt.core.Check(ent, nil)
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

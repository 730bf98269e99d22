package applog

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/status"
)

func TestMain(m *testing.M) {
	// The replay journal goes under Caddy's data directory.
	dir, err := os.MkdirTemp("", "applog-test-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_DATA_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newApp provisions an App and captures what it emits.
func newApp(t *testing.T, a *App) *observer.ObservedLogs {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Cleanup() })
	core, logs := observer.New(zapcore.DebugLevel)
	a.core, a.coreOf = core, nil
	return logs
}

func rec(app, logger string, level int, msg string) intake.Record {
	return intake.Record{App: app, Logger: logger, LevelNo: level, LevelName: intake.LevelName(level), Message: msg, Time: time.Unix(1763726400, 5), Host: "192.0.2.1"}
}

func submit(t *testing.T, a *App, recs ...intake.Record) (intake.Result, error) {
	t.Helper()
	return a.Submit(context.Background(), &intake.Batch{Records: recs})
}

func TestFacilityInheritance(t *testing.T) {
	a := &App{Facilities: map[string]*Facility{
		"myapp":                 {Level: "WARNING", MaxMessageSize: 10},
		"myapp:web":             {Level: "debug"},
		"myapp:web.requests.db": {Level: "error"},
		"other":                 nil,
	}}
	logs := newApp(t, a)
	res, err := submit(t, a,
		rec("myapp", "root", 20, "filtered: app root is WARNING"),
		rec("myapp", "web.requests", 10, "kept: inherits web's debug"),
		rec("myapp", "web.requests.db.pool", 30, "filtered: db is error"),
		rec("myapp", "web", 40, "kept and cut to ten bytes"),
		rec("other", "x", 0, "kept: no threshold"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if res != (intake.Result{Accepted: 3, Filtered: 2, Truncated: 2}) {
		t.Fatalf("result %+v", res)
	}
	entries := logs.All()
	if len(entries) != 3 {
		t.Fatalf("%d entries", len(entries))
	}
	e := entries[1]
	if e.LoggerName != "applog.myapp.web" || e.Message != "kept and c" || e.Level != zapcore.ErrorLevel {
		t.Fatalf("entry %+v", e.Entry)
	}
	fields := e.ContextMap()
	if fields["truncated"] != true || fields["host"] != "192.0.2.1" || fields["level_name"] != "ERROR" || fields["level_no"] != int64(40) {
		t.Fatalf("fields %v", fields)
	}
	if got := entries[0]; got.LoggerName != "applog.myapp.web.requests" || got.Message != "kept: inhe" || !got.Time.Equal(time.Unix(1763726400, 5)) || got.Level != zapcore.DebugLevel {
		t.Fatalf("entry %+v", got.Entry)
	}
	if entries[2].LoggerName != "applog.other.x" {
		t.Fatalf("entry %+v", entries[2].Entry)
	}
}

func TestTruncateKeepsUTF8(t *testing.T) {
	s := "ab€cd" // € is 3 bytes at offset 2
	if !truncate(&s, 4) || s != "ab" {
		t.Fatalf("got %q", s)
	}
	s = "abc"
	if truncate(&s, 3) || s != "abc" {
		t.Fatalf("got %q", s)
	}
}

func TestUnknownApps(t *testing.T) {
	a := &App{Facilities: map[string]*Facility{"known": {}}}
	newApp(t, a)
	_, err := submit(t, a, rec("known", "", 20, "ok"), rec("stranger", "", 20, "no"))
	if intake.StatusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), `record 2: unknown app "stranger"`) {
		t.Fatalf("err %v", err)
	}
	if _, err := submit(t, a, rec("bad.name", "", 20, "no")); intake.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("err %v", err)
	}
	a.DeclareApp("stranger")
	if _, err := submit(t, a, rec("stranger", "", 20, "now known")); err != nil || !a.KnowsApp("stranger") {
		t.Fatalf("declared app refused: %v", err)
	}
	b := &App{AcceptUnknown: true}
	newApp(t, b)
	if _, err := submit(t, b, rec("anyone", "", 20, "ok")); err != nil {
		t.Fatal(err)
	}
}

func sig(ts int64, body string, secrets ...string) *intake.Signature {
	payload := []byte(strconv.FormatInt(ts, 10) + "." + body)
	s := &intake.Signature{Timestamp: ts, Payload: payload}
	for _, secret := range secrets {
		h := hmac.New(sha256.New, []byte(secret))
		h.Write(payload)
		s.MACs = append(s.MACs, h.Sum(nil))
	}
	return s
}

func TestSignatures(t *testing.T) {
	a := &App{Facilities: map[string]*Facility{
		"pay":        {Secrets: []string{"new", "old"}},
		"pay:audit":  {Secrets: []string{"audit-key"}},
		"pay:public": {},
		"open":       {},
	}}
	logs := newApp(t, a)
	now := time.Now().Unix()
	try := func(s *intake.Signature, recs ...intake.Record) error {
		_, err := a.Submit(context.Background(), &intake.Batch{Records: recs, Signature: s})
		return err
	}
	for _, tc := range []struct {
		name   string
		sig    *intake.Signature
		recs   []intake.Record
		status int
		reason string
	}{
		{"unsigned needs none", nil, []intake.Record{rec("open", "", 20, "a")}, 0, ""},
		{"missing", nil, []intake.Record{rec("pay", "", 20, "a")}, 401, "facility pay requires a signed request"},
		{"old secret still valid", sig(now, "b1", "old"), []intake.Record{rec("pay", "", 20, "a")}, 0, ""},
		{"child inherits secret", sig(now, "b2", "new"), []intake.Record{rec("pay", "public.page", 20, "a")}, 0, ""},
		{"child's own secret", sig(now, "b3", "new"), []intake.Record{rec("pay", "audit", 20, "a")}, 403, "bad signature for facility pay:audit"},
		{"two secrets, two MACs", sig(now, "b4", "new", "audit-key"), []intake.Record{rec("pay", "", 20, "a"), rec("pay", "audit.x", 20, "b")}, 0, ""},
		{"two secrets, one MAC", sig(now, "b5", "new"), []intake.Record{rec("pay", "", 20, "a"), rec("pay", "audit.x", 20, "b")}, 403, "bad signature for facility pay:audit"},
		{"future", sig(now+400, "b6", "new"), []intake.Record{rec("pay", "", 20, "a")}, 403, "replay window"},
		{"replay", sig(now, "b1", "old"), []intake.Record{rec("pay", "", 20, "a")}, 409, "replayed request"},
	} {
		n := len(logs.AllUntimed())
		err := try(tc.sig, tc.recs...)
		if tc.status == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if intake.StatusOf(err) != tc.status || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: got %v, want %d %q", tc.name, err, tc.status, tc.reason)
		}
		if len(logs.AllUntimed()) != n {
			t.Errorf("%s: a refused batch emitted records", tc.name)
		}
	}
}

func TestProvisionErrors(t *testing.T) {
	t.Setenv("APPLOG_EMPTY", "")
	for cfg, want := range map[string]*App{
		"unknown level":   {Facilities: map[string]*Facility{"a": {Level: "loud"}}},
		"secret is empty": {Facilities: map[string]*Facility{"a": {Secrets: []string{"{env.APPLOG_EMPTY}"}}}},
		"app name must":   {Facilities: map[string]*Facility{"a.b": {}}},
		"sub-module must": {Facilities: map[string]*Facility{"a:b/c": {}}},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := want.Provision(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), cfg) {
			t.Errorf("got %v, want an error containing %q", err, cfg)
		}
	}
}

func TestReplayCacheBounded(t *testing.T) {
	c := newReplayCache("")
	now := time.Now()
	if c.remember([][]byte{{1}}, now.Unix(), now.Add(time.Second), now) != nil || c.remember([][]byte{{1}}, now.Unix(), now.Add(time.Second), now) != errReplayed {
		t.Fatal("duplicate accepted")
	}
	// Once expired and swept, the entry is forgotten.
	later := now.Add(time.Minute)
	if c.remember([][]byte{{2}}, later.Unix(), later.Add(time.Second), later) != nil || len(c.seen) != 1 {
		t.Fatalf("expired entries not swept: %d", len(c.seen))
	}
}

func TestRecentKeepsNewestOfLargeBatches(t *testing.T) {
	a := &App{Facilities: map[string]*Facility{"big": {Level: "info"}}}
	newApp(t, a)
	status.SetRecentSize(4)
	defer status.SetRecentSize(0)
	var recs []intake.Record
	for i := range 11 {
		level := 20
		if i == 9 {
			level = 10 // filtered: must not take a place
		}
		recs = append(recs, rec("big", "", level, strconv.Itoa(i)))
	}
	if _, err := submit(t, a, recs...); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range status.Recent(0, 0) {
		got = append(got, e.Message)
	}
	if strings.Join(got, ",") != "6,7,8,10" {
		t.Fatalf("recent %v, want the newest four accepted in order", got)
	}
}

// failingCore accepts every entry and fails to write it, as a core whose
// writer is on a full disk does.
type failingCore struct{ zapcore.LevelEnabler }

func (c failingCore) With([]zapcore.Field) zapcore.Core { return c }
func (c failingCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, c)
}
func (failingCore) Write(zapcore.Entry, []zapcore.Field) error {
	return errors.New("write /var/log/app.log: no space left on device")
}
func (failingCore) Sync() error { return nil }

// TestWriteErrorsAreLogged: an entry its writer could not write is
// reported in the app's log, naming the writer's error, at most once a
// second with a count of the others; the record still counts as
// accepted (the app accepted it; the writer lost it).
func TestWriteErrorsAreLogged(t *testing.T) {
	a := &App{Facilities: map[string]*Facility{"myapp": nil}}
	newApp(t, a)
	appCore, appLogs := observer.New(zapcore.DebugLevel)
	a.writeErrs.logger = zap.New(appCore)
	a.core, a.coreOf = failingCore{zapcore.DebugLevel}, nil
	for range 3 {
		if _, err := submit(t, a, rec("myapp", "web", 30, "lost")); err != nil {
			t.Fatal(err)
		}
	}
	entries := appLogs.All()
	if len(entries) != 1 {
		t.Fatalf("want one line for three failures in a second, got %d: %v", len(entries), entries)
	}
	got := entries[0].ContextMap()
	if entries[0].Message != "writing a log entry failed" || got["error"] != "write /var/log/app.log: no space left on device" {
		t.Fatalf("got %q %v", entries[0].Message, got)
	}
	a.writeErrs.now = func() time.Time { return time.Now().Add(time.Second) } // a second later
	if _, err := submit(t, a, rec("myapp", "web", 30, "lost")); err != nil {
		t.Fatal(err)
	}
	if entries := appLogs.All(); len(entries) != 2 || entries[1].ContextMap()["similar_suppressed"] != int64(2) {
		t.Fatalf("the next line should count the 2 suppressed: %v", entries)
	}
}

// TestSubmitCopiesWhatItKeeps: a receiver decodes records whose strings
// point into its read buffer and overwrites the buffer once Submit has
// returned (syslogmsg.ParseInPlace); what the app keeps, the status
// page's recent records and its cache of logger names, must not change
// with the buffer.
func TestSubmitCopiesWhatItKeeps(t *testing.T) {
	a := &App{Facilities: map[string]*Facility{"shop": {}}}
	newApp(t, a)
	var out bytes.Buffer
	a.core, a.coreOf = zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&out), zapcore.DebugLevel), nil
	status.SetRecentSize(4)
	defer status.SetRecentSize(0)

	buf := []byte("shop|web.views|WARNING|card declined|shop-1")
	field := func(i int) string { // the i-th |-separated field, in place
		parts := bytes.Split(buf, []byte("|"))
		start := bytes.Index(buf, parts[i])
		return unsafe.String(&buf[start], len(parts[i]))
	}
	r := intake.Record{App: field(0), Logger: field(1), LevelName: field(2), LevelNo: 30, Message: field(3), Host: field(4), Time: time.Unix(1763726400, 0)}
	if _, err := a.Submit(context.Background(), &intake.Batch{Records: []intake.Record{r}, Source: "syslog/tcp/test"}); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 'X' // the next message read into the buffer
	}
	recent := status.Recent(0, 0)
	if len(recent) != 1 {
		t.Fatalf("recent = %v", recent)
	}
	e := recent[0]
	if e.App != "shop" || e.Facility != "web.views" || e.Logger != "web.views" || e.LevelName != "WARNING" || e.Message != "card declined" || e.Host != "shop-1" {
		t.Errorf("recent record changed with the buffer: %+v", e)
	}
	rules := (*a.apps.Load())["shop"].root
	for k, v := range *rules.routes.m.Load() {
		if k != "applog.shop.web.views" || v.name != k {
			t.Errorf("route cache changed with the buffer: %q → %q", k, v.name)
		}
	}
	if !strings.Contains(out.String(), `"msg":"card declined"`) {
		t.Errorf("entry = %s", out.String())
	}
}

// BenchmarkSubmit submits one typical record at a time (a Python
// record's attributes, as the form and pickle doors decode them) to a
// JSON core writing nowhere: the app's own cost per record.
func BenchmarkSubmit(b *testing.B) {
	a := &App{Facilities: map[string]*Facility{"shop": {}}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := a.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	defer a.Cleanup()
	a.core, a.coreOf = zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.DebugLevel), nil
	r := rec("shop", "shop.views", 20, "user alice logged in from 10.0.0.7 seq=7")
	r.Wire = 600
	r.Attrs = []intake.Attr{
		{Key: "pathname", Value: intake.String("/srv/shop/views.py")},
		{Key: "filename", Value: intake.String("views.py")},
		{Key: "module", Value: intake.String("views")},
		{Key: "lineno", Value: intake.Int(42)},
		{Key: "funcName", Value: intake.String("login")},
		{Key: "msecs", Value: intake.Float(430.0)},
		{Key: "relativeCreated", Value: intake.Float(5012.345678329468)},
		{Key: "thread", Value: intake.Int(140234234234112)},
		{Key: "threadName", Value: intake.String("MainThread")},
		{Key: "processName", Value: intake.String("MainProcess")},
		{Key: "process", Value: intake.Int(4242)},
		{Key: "user", Value: intake.JSON(`{"id":42,"roles":["a","b"]}`)},
	}
	attrs := r.Attrs
	batch := &intake.Batch{Records: make([]intake.Record, 1), Source: "bench"}
	b.ReportAllocs()
	for b.Loop() {
		batch.Records[0] = r
		batch.Records[0].Attrs = attrs
		if _, err := a.Submit(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

package syslog

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func newEncoder(t testing.TB, e *Encoder) *Encoder {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := e.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

var entryTime = time.Date(2026, 11, 22, 1, 2, 3, 456789000, time.UTC)

func encode(t *testing.T, e *Encoder, level zapcore.Level, fields ...zap.Field) string {
	t.Helper()
	buf, err := e.EncodeEntry(zapcore.Entry{Level: level, Time: entryTime, LoggerName: "applog.shop.cart", Message: "hi"}, fields)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Free()
	return buf.String()
}

func TestEncoderRFC5424(t *testing.T) {
	e := newEncoder(t, &Encoder{Facility: "local3", ProcID: "42", MsgID: "ID7", Hostname: "web1"})
	got := encode(t, e, zapcore.InfoLevel, zap.String("app", "shop"), zap.String("host", "10.0.0.9"), zap.Int("level_no", 25))
	want := `<157>1 2026-11-22T01:02:03.456789Z web1 shop 42 ID7 - {"level":"info","ts":1795309323.456789,"logger":"applog.shop.cart","msg":"hi","app":"shop","host":"10.0.0.9","level_no":25}` + "\n"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	// Defaults: the record's host and app, "-" for empty fields.
	e = newEncoder(t, &Encoder{ProcID: "1", StructuredData: `[origin ip="192.0.2.1"]`})
	got = encode(t, e, zapcore.ErrorLevel, zap.String("app", "my app"), zap.String("host", "::1"))
	if !strings.HasPrefix(got, `<11>1 2026-11-22T01:02:03.456789Z ::1 my_app 1 - [origin ip="192.0.2.1"] {`) {
		t.Fatalf("got %q", got)
	}
	// Caddy's own entries: app "caddy", this machine's name.
	got = encode(t, e, zapcore.WarnLevel)
	if !strings.Contains(got, " "+e.localHost+" caddy 1 - ") || !strings.HasPrefix(got, "<12>1 ") {
		t.Fatalf("got %q", got)
	}
}

func TestEncoderRFC3164(t *testing.T) {
	e := newEncoder(t, &Encoder{RFC: "rfc3164", Facility: "daemon", ProcID: "99"})
	got := encode(t, e, zapcore.DebugLevel, zap.String("app", "shop"), zap.String("host", "h1"))
	if !strings.HasPrefix(got, "<31>Nov 22 01:02:03 h1 shop[99]: {") {
		t.Fatalf("got %q", got)
	}
}

func TestSeverities(t *testing.T) {
	for no, sev := range map[int]int{0: 7, 10: 7, 20: 6, 25: 5, 30: 4, 40: 3, 45: 3, 50: 2, 60: 1, 70: 0} {
		if got := pythonSeverity(no); got != sev {
			t.Errorf("pythonSeverity(%d) = %d, want %d", no, got, sev)
		}
	}
	for l, sev := range map[zapcore.Level]int{zapcore.DebugLevel: 7, zapcore.InfoLevel: 6, zapcore.WarnLevel: 4, zapcore.ErrorLevel: 3, zapcore.DPanicLevel: 2, zapcore.PanicLevel: 1, zapcore.FatalLevel: 0} {
		if got := severity(l); got != sev {
			t.Errorf("severity(%v) = %d, want %d", l, got, sev)
		}
	}
}

func TestEncoderCaddyfile(t *testing.T) {
	var e Encoder
	if err := e.UnmarshalCaddyfile(caddyfile.NewTestDispenser("syslog rfc3164 {\n facility local7\n app_name web\n wrap console\n}")); err != nil {
		t.Fatal(err)
	}
	if e.RFC != "rfc3164" || e.Facility != "local7" || e.AppName != "web" || !strings.Contains(string(e.WrappedRaw), `"format":"console"`) {
		t.Fatalf("%+v %s", e, e.WrappedRaw)
	}
	for in, want := range map[string]string{
		"syslog rfc9999":                     "want rfc5424 or rfc3164",
		"syslog {\n facility local9\n}":      `unknown syslog facility "local9"`,
		"syslog {\n structured_data nope\n}": "want one or more [id",
		"syslog {\n colour red\n}":           "unrecognized syslog encoder option 'colour'",
	} {
		var e Encoder
		if err := e.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
}

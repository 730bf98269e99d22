package syslogmsg

import (
	"reflect"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

func TestSeverityLevelsFollowIntake(t *testing.T) {
	want := []int{70, 60, 50, 40, 30, 25, 20, 10}
	for sev := range 8 {
		name := SeverityName(sev)
		n, ok := intake.ParseLevel(name)
		if !ok || n != severityLevel(sev) || n != want[sev] {
			t.Errorf("severity %d (%s): level %d, intake.ParseLevel says %d %v, want %d", sev, name, severityLevel(sev), n, ok, want[sev])
		}
	}
}

func TestFacilityName(t *testing.T) {
	for f, want := range map[int]string{0: "kern", 1: "user", 4: "auth", 10: "authpriv", 12: "ntp",
		15: "solaris-cron", 16: "local0", 23: "local7", 24: "24", -1: "-1"} {
		if got := FacilityName(f); got != want {
			t.Errorf("FacilityName(%d) = %q, want %q", f, got, want)
		}
	}
}

func TestAppFacility(t *testing.T) {
	for _, tc := range []struct{ program, app, facility string }{
		{"gunicorn.myproj.access", "gunicorn", "myproj.access"},
		{"gunicorn.myproj.wsgi.application.error", "gunicorn", "myproj.wsgi.application.error"},
		{"myapp", "myapp", ""},
		{"myapp.web", "myapp", "web"},
		{"postfix/smtpd", "postfix_smtpd", ""},
		{"%SYS-5-CONFIG_I", "_SYS-5-CONFIG_I", ""},
		{"app.we b..x.", "app", "we_b.x"},
		{"", "", ""},
		{"-", "", ""}, // RFC 5424 nil APP-NAME in an rsyslog legacy template
		{"-.x", "", ""},
		{".hidden", "", ""},
		{"café.ü", "caf__", "__"},
	} {
		app, facility := AppFacility(tc.program)
		if app != tc.app || facility != tc.facility {
			t.Errorf("AppFacility(%q) = %q, %q; want %q, %q", tc.program, app, facility, tc.app, tc.facility)
		}
		if app != "" && !intake.ValidApp(app) {
			t.Errorf("AppFacility(%q): %q is not a valid app", tc.program, app)
		}
		if facility != intake.FacilityFromLogger(facility) {
			t.Errorf("AppFacility(%q): facility %q is not clean", tc.program, facility)
		}
	}
}

func TestToRecord(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ts := time.Date(2026, 11, 22, 0, 40, 51, 0, time.UTC)
	m := Message{Facility: 16, Severity: 6, Timestamp: ts, Hostname: "web01", AppName: "gunicorn.myproj.access",
		ProcID: "1234", MsgID: "ID47", StructuredData: `[a b="c"]`, Message: "GET /", Format: RFC5424}
	rec := ToRecord(m, now)
	want := intake.Record{
		Time: ts, LevelNo: 20, LevelName: "info", Message: "GET /", App: "gunicorn", Facility: "myproj.access",
		Attrs: []intake.Attr{
			{Key: "syslog_facility", Value: intake.String("local0")},
			{Key: "syslog_severity", Value: intake.Int(6)},
			{Key: "program", Value: intake.String("gunicorn.myproj.access")},
			{Key: "hostname", Value: intake.String("web01")},
			{Key: "procid", Value: intake.String("1234")},
			{Key: "msgid", Value: intake.String("ID47")},
			{Key: "structured_data", Value: intake.String(`[a b="c"]`)},
		},
	}
	if !reflect.DeepEqual(rec, want) {
		t.Errorf("got  %+v\nwant %+v", rec, want)
	}

	rec = ToRecord(Message{Facility: 1, Severity: 3, Message: "boom", Format: Bare}, now)
	if !rec.Time.Equal(now) || rec.LevelNo != 40 || rec.LevelName != "err" || rec.App != "" || rec.Logger != "" || len(rec.Attrs) != 2 {
		t.Errorf("bare record %+v", rec)
	}
	rec = ToRecord(Message{Severity: 0, AppName: "kernel"}, now)
	if rec.LevelNo != 70 || rec.LevelName != "emerg" || rec.App != "kernel" || rec.Facility != "" {
		t.Errorf("emerg record %+v", rec)
	}
}

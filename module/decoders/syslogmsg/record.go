package syslogmsg

import (
	"strconv"
	"strings"
	"time"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// ToRecord maps a message onto a record:
//
//   - LevelNo is the severity on Python's scale, as intake maps syslog's
//     words (emerg 70, alert 60, crit 50, err 40, warning 30, notice 25,
//     info 20, debug 10); LevelName is the severity's keyword ("err").
//   - Time is the message's timestamp, or now when it has none.
//   - App and Facility come from the program name (see AppFacility):
//     "gunicorn.myproj.access" is app "gunicorn", facility
//     "myproj.access". A receiver with an app of its own overrides them.
//   - Logger is empty: syslog has no logger names, and the app derives
//     a facility from Logger when Facility is empty, which must not
//     turn program "myapp" into facility "myapp".
//   - Host is left to the receiver, which knows the peer address. The
//     hostname the message claims is only an attribute.
//
// The attributes are syslog_facility (its keyword, "local0"),
// syslog_severity (the number), and, when present, program, hostname,
// procid, msgid and structured_data.
func ToRecord(m Message, now time.Time) intake.Record { return ToRecordReusing(m, now, nil) }

// ToRecordReusing is ToRecord with the attributes stored in attrs'
// backing array when it has room (a receiver reuses one per connection),
// else in a new one.
func ToRecordReusing(m Message, now time.Time, attrs []intake.Attr) intake.Record {
	sev := min(max(m.Severity, 0), 7)
	rec := intake.Record{
		Time:      m.Timestamp,
		LevelNo:   severityLevel(sev),
		LevelName: SeverityName(sev),
		Message:   m.Message,
	}
	if rec.Time.IsZero() {
		rec.Time = now
	}
	rec.App, rec.Facility = AppFacility(m.AppName)
	optional := [...]struct{ key, value string }{
		{"program", m.AppName},
		{"hostname", m.Hostname},
		{"procid", m.ProcID},
		{"msgid", m.MsgID},
		{"structured_data", m.StructuredData},
	}
	n := 2
	for _, a := range optional {
		if a.value != "" {
			n++
		}
	}
	if cap(attrs) < n {
		attrs = make([]intake.Attr, 0, n) // exactly: a record's attributes are a large part of its allocation
	}
	attrs = append(attrs[:0],
		intake.Attr{Key: "syslog_facility", Value: intake.String(FacilityName(m.Facility))},
		intake.Attr{Key: "syslog_severity", Value: intake.Int(int64(m.Severity))})
	for _, a := range optional {
		if a.value != "" {
			attrs = append(attrs, intake.Attr{Key: a.key, Value: intake.String(a.value)})
		}
	}
	rec.Attrs = attrs
	return rec
}

// AppFacility splits a program name at its first dot: the app is what
// comes before, the facility what comes after. "gunicorn.myproj.access"
// (gunicorn's "gunicorn.<proc_name>.<access|error>") is app "gunicorn",
// facility "myproj.access"; "myapp.web" from a Python ident is app
// "myapp", facility "web"; "sshd" is app "sshd" at its root.
//
// The app is made a valid app name: bytes other than letters, digits,
// '_' and '-' become '_' ("postfix/smtpd" is app "postfix_smtpd"), and
// it is cut to intake.MaxNameLen bytes. The facility is cleaned by
// intake.FacilityFromLogger. A program that is empty or starts with a
// dot names no app: both are empty, for the receiver's own app to
// apply.
//
// The message text is never read for a name, even when it starts like
// "django.request: ...": a formatter's prefix cannot be told from a
// message that happens to start with a word and a colon.
func AppFacility(program string) (app, facility string) {
	first, rest, _ := strings.Cut(program, ".")
	// "-" is RFC 5424's nil APP-NAME; rsyslog's legacy forwarding
	// templates copy it into the RFC 3164 TAG: the message names no app.
	if first == "" || first == "-" {
		return "", ""
	}
	return appName(first), intake.FacilityFromLogger(rest)
}

// appName makes s a valid app name.
func appName(s string) string {
	if len(s) > intake.MaxNameLen {
		s = s[:intake.MaxNameLen]
	}
	if intake.ValidApp(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// severityLevel maps a severity onto Python's scale.
func severityLevel(sev int) int {
	switch sev {
	case 0:
		return intake.LevelEmerg
	case 1:
		return intake.LevelAlert
	case 2:
		return intake.LevelCritical
	case 3:
		return intake.LevelError
	case 4:
		return intake.LevelWarning
	case 5:
		return intake.LevelNotice
	case 6:
		return intake.LevelInfo
	}
	return intake.LevelDebug
}

// SeverityName returns the keyword of a severity, as syslog.conf and
// Python's SysLogHandler write them: "emerg", "alert", "crit", "err",
// "warning", "notice", "info", "debug".
func SeverityName(sev int) string {
	switch sev {
	case 0:
		return "emerg"
	case 1:
		return "alert"
	case 2:
		return "crit"
	case 3:
		return "err"
	case 4:
		return "warning"
	case 5:
		return "notice"
	case 6:
		return "info"
	case 7:
		return "debug"
	}
	return strconv.Itoa(sev)
}

// FacilityName returns the keyword of a facility, as Python's
// SysLogHandler.facility_names has them ("kern", "user", ... "local7";
// 12 to 15 are "ntp", "security", "console" and "solaris-cron").
func FacilityName(facility int) string {
	switch facility {
	case 0:
		return "kern"
	case 1:
		return "user"
	case 2:
		return "mail"
	case 3:
		return "daemon"
	case 4:
		return "auth"
	case 5:
		return "syslog"
	case 6:
		return "lpr"
	case 7:
		return "news"
	case 8:
		return "uucp"
	case 9:
		return "cron"
	case 10:
		return "authpriv"
	case 11:
		return "ftp"
	case 12:
		return "ntp"
	case 13:
		return "security"
	case 14:
		return "console"
	case 15:
		return "solaris-cron"
	case 16:
		return "local0"
	case 17:
		return "local1"
	case 18:
		return "local2"
	case 19:
		return "local3"
	case 20:
		return "local4"
	case 21:
		return "local5"
	case 22:
		return "local6"
	case 23:
		return "local7"
	}
	return strconv.Itoa(facility)
}

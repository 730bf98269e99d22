package syslogmsg

import (
	"strings"
	"testing"
	"time"
)

var (
	testNow = time.Date(2026, 11, 22, 0, 41, 0, 0, time.UTC)
	berlin  = time.FixedZone("CET", 3600)
)

type parseCase struct {
	name, in string
	want     Message
	ts       string // want.Timestamp in RFC 3339, "" for none
	loc      *time.Location
	now      time.Time // testNow when zero
	wantErr  string
}

// parseCases are lines as real senders write them. Those marked
// "logger" were captured from util-linux logger 2.38 on loopback; the
// RFC ones are the RFCs' own examples.
var parseCases = []parseCase{
	// RFC 5424
	{
		name: "logger --rfc5424",
		in:   "<13>1 2026-11-22T00:40:51.531267+00:00 vm root - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] hello w\xc3\xb6rld",
		want: Message{Facility: 1, Severity: 5, Hostname: "vm", AppName: "root",
			StructuredData: `[timeQuality tzKnown="1" isSynced="0"]`, Message: "hello wörld", Format: RFC5424},
		ts: "2026-11-22T00:40:51.531267Z",
	},
	{
		name: "logger --rfc5424=notq,notime",
		in:   "<13>1 - vm root - - - hello w\xc3\xb6rld",
		want: Message{Facility: 1, Severity: 5, Hostname: "vm", AppName: "root", Message: "hello wörld", Format: RFC5424},
	},
	{
		name: "logger --sd-param with escapes",
		in:   `<13>1 2026-11-22T00:40:54.589777+00:00 vm root - - [timeQuality tzKnown="1" isSynced="0"][zoo@123 tiger="hungry \"x\" \]"] hello`,
		want: Message{Facility: 1, Severity: 5, Hostname: "vm", AppName: "root",
			StructuredData: `[timeQuality tzKnown="1" isSynced="0"][zoo@123 tiger="hungry \"x\" \]"]`, Message: "hello", Format: RFC5424},
		ts: "2026-11-22T00:40:54.589777Z",
	},
	{
		name: "logger --msgid -t app.web",
		in:   `<13>1 2026-11-22T00:40:54.594876+00:00 vm app.web - ID47 [timeQuality tzKnown="1" isSynced="0"] hello`,
		want: Message{Facility: 1, Severity: 5, Hostname: "vm", AppName: "app.web", MsgID: "ID47",
			StructuredData: `[timeQuality tzKnown="1" isSynced="0"]`, Message: "hello", Format: RFC5424},
		ts: "2026-11-22T00:40:54.594876Z",
	},
	{
		name: "RFC 5424 example 1, with BOM",
		in:   "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8",
		want: Message{Facility: 4, Severity: 2, Hostname: "mymachine.example.com", AppName: "su", MsgID: "ID47",
			Message: "'su root' failed for lonvick on /dev/pts/8", Format: RFC5424},
		ts: "2003-10-11T22:14:15.003Z",
	},
	{
		name: "RFC 5424 example 2",
		in:   "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
		want: Message{Facility: 20, Severity: 5, Hostname: "192.0.2.1", AppName: "myproc", ProcID: "8710",
			Message: "%% It's time to make the do-nuts.", Format: RFC5424},
		ts: "2003-08-24T05:14:15.000003-07:00",
	},
	{
		name: "RFC 5424 example 4, SD only",
		in:   `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
		want: Message{Facility: 20, Severity: 5, Hostname: "mymachine.example.com", AppName: "evntslog", MsgID: "ID47",
			StructuredData: `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
			Format:         RFC5424},
		ts: "2003-10-11T22:14:15.003Z",
	},
	{
		name: "rsyslog RSYSLOG_SyslogProtocol23Format",
		in:   "<86>1 2026-11-22T01:02:03.123456+01:00 web01 sshd 999 - - Accepted publickey for deploy\n",
		want: Message{Facility: 10, Severity: 6, Hostname: "web01", AppName: "sshd", ProcID: "999",
			Message: "Accepted publickey for deploy", Format: RFC5424},
		ts: "2026-11-22T01:02:03.123456+01:00",
	},
	{
		name: "syslog-ng syslog() destination",
		in:   `<38>1 2026-11-22T01:02:03+01:00 web01 sshd 999 - [meta sequenceId="12"] Accepted publickey`,
		want: Message{Facility: 4, Severity: 6, Hostname: "web01", AppName: "sshd", ProcID: "999",
			StructuredData: `[meta sequenceId="12"]`, Message: "Accepted publickey", Format: RFC5424},
		ts: "2026-11-22T01:02:03+01:00",
	},
	{
		name: "RFC 5424 multi-line, invalid UTF-8, nanoseconds",
		in:   "<11>1 2026-11-22T00:00:00.123456789Z h app 1 - - boom\nTraceback (most recent call last):\n  x\xff\n",
		want: Message{Facility: 1, Severity: 3, Hostname: "h", AppName: "app", ProcID: "1",
			Message: "boom\nTraceback (most recent call last):\n  x\uFFFD", Format: RFC5424},
		ts: "2026-11-22T00:00:00.123456789Z",
	},
	{
		name: "RFC 5424 empty MSG",
		in:   "<14>1 - - - - - - ",
		want: Message{Facility: 1, Severity: 6, Format: RFC5424},
	},

	// RFC 3164
	{
		name: "logger --rfc3164",
		in:   "<13>Nov 22 00:40:51 vm root: hello w\xc3\xb6rld",
		want: Message{Facility: 1, Severity: 5, Hostname: "vm", AppName: "root", Message: "hello wörld", Format: RFC3164},
		ts:   "2026-11-22T00:40:51Z",
	},
	{
		name: "logger -p local3.err -t myapp -i --rfc3164",
		in:   "<155>Nov 22 00:40:54 vm myapp[11542]: hello",
		want: Message{Facility: 19, Severity: 3, Hostname: "vm", AppName: "myapp", ProcID: "11542", Message: "hello", Format: RFC3164},
		ts:   "2026-11-22T00:40:54Z",
	},
	{
		name: "rsyslog traditional forward, padded day, zone",
		in:   "<30>Nov  2 10:11:12 web01 systemd[1]: Started Session 5 of user root.",
		want: Message{Facility: 3, Severity: 6, Hostname: "web01", AppName: "systemd", ProcID: "1",
			Message: "Started Session 5 of user root.", Format: RFC3164},
		ts:  "2026-11-02T10:11:12+01:00",
		loc: berlin,
	},
	{
		name: "RFC 3164 example",
		in:   "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
		want: Message{Facility: 4, Severity: 2, Hostname: "mymachine", AppName: "su",
			Message: "'su root' failed for lonvick on /dev/pts/8", Format: RFC3164},
		ts: "2026-10-11T22:14:15Z",
	},
	{
		// RFC 3164's example has no tag, but rsyslog and syslog-ng
		// read the word after the hostname as one all the same.
		name: "RFC 3164 example without tag",
		in:   "<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
		want: Message{Facility: 1, Severity: 5, Hostname: "10.0.0.99", AppName: "Use", Message: "the BFG!", Format: RFC3164},
		ts:   "2026-02-05T17:32:18Z",
	},
	{
		name: "rsyslog RSYSLOG_TraditionalForwardFormat of RFC 5424 input without PROCID",
		in:   "<13>Dec  4 20:24:01 vm webapp via rsyslog traditional",
		want: Message{Facility: 1, Severity: 5, Hostname: "vm", AppName: "webapp", Message: "via rsyslog traditional", Format: RFC3164},
		ts:   "2026-12-04T20:24:01Z",
	},
	{
		name: "rsyslog RSYSLOG_ForwardFormat of RFC 5424 input without PROCID",
		in:   "<13>2026-12-04T20:24:01.123456+00:00 vm webapp via rsyslog forward",
		want: Message{Facility: 1, Severity: 5, Hostname: "vm", AppName: "webapp", Message: "via rsyslog forward", Format: RFC3164},
		ts:   "2026-12-04T20:24:01.123456Z",
	},
	{
		name: "tag without colon, with pid",
		in:   "<13>Dec  4 20:24:01 vm postfix/smtpd[42] connect from x",
		want: Message{Facility: 1, Severity: 5, Hostname: "vm", AppName: "postfix/smtpd", ProcID: "42", Message: "connect from x", Format: RFC3164},
		ts:   "2026-12-04T20:24:01Z",
	},
	{
		name: "tag alone after the hostname",
		in:   "<13>Dec  4 20:24:01 vm webapp",
		want: Message{Facility: 1, Severity: 5, Hostname: "vm", AppName: "webapp", Format: RFC3164},
		ts:   "2026-12-04T20:24:01Z",
	},
	{
		name: "word after the hostname too long for a tag",
		in:   "<13>Dec  4 20:24:01 vm " + strings.Repeat("w", 200) + " x",
		want: Message{Facility: 1, Severity: 5, Hostname: "vm", Message: strings.Repeat("w", 200) + " x", Format: RFC3164},
		ts:   "2026-12-04T20:24:01Z",
	},
	{
		name: "loggen legacy: ISO timestamp without a zone, in loc",
		in:   "<38>2026-12-04T20:22:39 localhost prg00000[1234]: seq: 0000000000, thread: 0000, runid: 1796416568, stamp: 2026-12-04T20:22:39 PADDPADD\n",
		want: Message{Facility: 4, Severity: 6, Hostname: "localhost", AppName: "prg00000", ProcID: "1234",
			Message: "seq: 0000000000, thread: 0000, runid: 1796416568, stamp: 2026-12-04T20:22:39 PADDPADD", Format: RFC3164},
		ts:  "2026-12-04T20:22:39+01:00",
		loc: berlin,
	},
	{
		name: "ISO timestamp without a zone, fractional",
		in:   "<38>2026-12-04T20:22:39.5 h a: x",
		want: Message{Facility: 4, Severity: 6, Hostname: "h", AppName: "a", Message: "x", Format: RFC3164},
		ts:   "2026-12-04T20:22:39.5Z",
	},
	{
		name: "December message in January",
		in:   "<13>Dec 31 23:59:59 h a: x",
		want: Message{Facility: 1, Severity: 5, Hostname: "h", AppName: "a", Message: "x", Format: RFC3164},
		ts:   "2026-12-31T23:59:59Z",
		now:  time.Date(2027, 1, 1, 0, 0, 10, 0, time.UTC),
	},
	{
		name: "January message on New Year's Eve",
		in:   "<13>Jan  1 00:00:05 h a: x",
		want: Message{Facility: 1, Severity: 5, Hostname: "h", AppName: "a", Message: "x", Format: RFC3164},
		ts:   "2027-01-01T00:00:05Z",
		now:  time.Date(2026, 12, 31, 23, 59, 50, 0, time.UTC),
	},
	{
		name: "February 29th",
		in:   "<13>Feb 29 12:00:00 h a: x",
		want: Message{Facility: 1, Severity: 5, Hostname: "h", AppName: "a", Message: "x", Format: RFC3164},
		ts:   "2024-02-29T12:00:00Z",
		now:  time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC),
	},
	{
		name: "February 29th in no nearby year",
		in:   "<13>Feb 29 12:00:00 h a: x",
		want: Message{Facility: 1, Severity: 5, Message: "Feb 29 12:00:00 h a: x", Format: Bare},
		now:  time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
	},
	{
		name: "local socket style, no hostname",
		in:   "<30>Jan  5 10:00:00 myapp[42]: started",
		want: Message{Facility: 3, Severity: 6, AppName: "myapp", ProcID: "42", Message: "started", Format: RFC3164},
		ts:   "2026-01-05T10:00:00Z",
	},
	{
		name: "no hostname, tag without pid",
		in:   "<30>Jan 5 10:00:00 kernel: eth0 up",
		want: Message{Facility: 3, Severity: 6, AppName: "kernel", Message: "eth0 up", Format: RFC3164},
		ts:   "2026-01-05T10:00:00Z",
	},
	{
		name: "IPv6 hostname",
		in:   "<30>Jan 15 10:00:00 fe80::1 postfix/smtpd[7]: connect",
		want: Message{Facility: 3, Severity: 6, Hostname: "fe80::1", AppName: "postfix/smtpd", ProcID: "7", Message: "connect", Format: RFC3164},
		ts:   "2026-01-15T10:00:00Z",
	},
	{
		name: "rsyslog forward format, RFC 3339 timestamp",
		in:   "<13>2026-01-05T10:11:12.345678+01:00 web01 myapp[1234]: hello",
		want: Message{Facility: 1, Severity: 5, Hostname: "web01", AppName: "myapp", ProcID: "1234", Message: "hello", Format: RFC3164},
		ts:   "2026-01-05T10:11:12.345678+01:00",
	},
	{
		name: "fractional seconds and a year",
		in:   "<13>Mar  1 2024 10:11:12.5 cisco %SYS-5-CONFIG_I: Configured",
		want: Message{Facility: 1, Severity: 5, Hostname: "cisco", AppName: "%SYS-5-CONFIG_I", Message: "Configured", Format: RFC3164},
		ts:   "2024-03-01T10:11:12.5Z",
	},
	{
		name: "pid without colon",
		in:   "<13>Mar  1 10:11:12 host prog[9] text",
		want: Message{Facility: 1, Severity: 5, Hostname: "host", AppName: "prog", ProcID: "9", Message: "text", Format: RFC3164},
		ts:   "2026-03-01T10:11:12Z",
	},
	{
		name: "latin-1 bytes",
		in:   "<13>Mar  1 10:11:12 host prog: caf\xe9",
		want: Message{Facility: 1, Severity: 5, Hostname: "host", AppName: "prog", Message: "caf\uFFFD", Format: RFC3164},
		ts:   "2026-03-01T10:11:12Z",
	},

	// Bare: Python's SysLogHandler, gunicorn.
	{
		name: "SysLogHandler with ident",
		in:   "<14>myapp: hello\x00",
		want: Message{Facility: 1, Severity: 6, AppName: "myapp", Message: "hello", Format: Bare},
	},
	{
		name: "SysLogHandler without ident",
		in:   "<14>hello world\x00",
		want: Message{Facility: 1, Severity: 6, Message: "hello world", Format: Bare},
	},
	{
		name: "SysLogHandler traceback",
		in: "<11>myapp: boom\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n" +
			"ZeroDivisionError: division by zero\x00",
		want: Message{Facility: 1, Severity: 3, AppName: "myapp",
			Message: "boom\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nZeroDivisionError: division by zero",
			Format:  Bare},
	},
	{
		name: "basicConfig-style format is not a program",
		in:   "<12>WARNING:root:disk full\x00",
		want: Message{Facility: 1, Severity: 4, Message: "WARNING:root:disk full", Format: Bare},
	},
	{
		name: "URL is not a program",
		in:   "<14>http://example.com/ fetched\x00",
		want: Message{Facility: 1, Severity: 6, Message: "http://example.com/ fetched", Format: Bare},
	},
	{
		name: "gunicorn access",
		in: "<134>gunicorn.myproj.access: [1234] 127.0.0.1 - - [22/Nov/2026:00:40:51 +0000] " +
			"\"GET / HTTP/1.1\" 200 12 \"-\" \"curl/7.88.1\"\x00",
		want: Message{Facility: 16, Severity: 6, AppName: "gunicorn.myproj.access",
			Message: "[1234] 127.0.0.1 - - [22/Nov/2026:00:40:51 +0000] \"GET / HTTP/1.1\" 200 12 \"-\" \"curl/7.88.1\"",
			Format:  Bare},
	},
	{
		name: "gunicorn error log, default proc_name",
		in:   "<14>gunicorn.myproj.wsgi.application.error: [1234] Booting worker with pid: 1235\x00",
		want: Message{Facility: 1, Severity: 6, AppName: "gunicorn.myproj.wsgi.application.error",
			Message: "[1234] Booting worker with pid: 1235", Format: Bare},
	},
	{
		name: "bare with pid",
		in:   "<14>worker[12]: done",
		want: Message{Facility: 1, Severity: 6, AppName: "worker", ProcID: "12", Message: "done", Format: Bare},
	},
	{
		name: "bare program alone",
		in:   "<14>myapp:",
		want: Message{Facility: 1, Severity: 6, AppName: "myapp", Format: Bare},
	},
	{
		name: "looks like RFC 5424 but is not",
		in:   "<14>1 apple a day",
		want: Message{Facility: 1, Severity: 6, Message: "1 apple a day", Format: Bare},
	},
	{
		name: "RFC 3164 example of a bad timestamp",
		in:   "<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!",
		want: Message{Message: "1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!", Format: Bare},
	},
	{
		name: "empty after PRI",
		in:   "<191>\x00",
		want: Message{Facility: 23, Severity: 7, Format: Bare},
	},
	{
		name: "CRLF",
		in:   "<14>app: x\r\n",
		want: Message{Facility: 1, Severity: 6, AppName: "app", Message: "x", Format: Bare},
	},

	// Errors
	{name: "empty", in: "", wantErr: "empty syslog message"},
	{name: "only NUL", in: "\x00\n", wantErr: "empty syslog message"},
	{name: "no PRI", in: "hello", wantErr: `syslog message at offset 0: no <PRI> at the start ("hello")`},
	{name: "empty PRI", in: "<>x", wantErr: "offset 1: PRI must be 1 to 3 digits"},
	{name: "long PRI", in: "<0013>x", wantErr: "offset 1: PRI must be 1 to 3 digits"},
	{name: "PRI not closed", in: "<13 x", wantErr: "offset 3: PRI not closed by '>'"},
	{name: "PRI too big", in: "<192>x", wantErr: "PRI 192 is above 191"},
	{name: "PRI alone", in: "<13", wantErr: "PRI not closed"},
	{name: "bad month", in: "<13>1 2003-13-11T22:14:15Z h a - - - m", wantErr: "offset 6: invalid TIMESTAMP"},
	{name: "February 30th", in: "<13>1 2003-02-30T22:14:15Z h a - - - m", wantErr: "invalid TIMESTAMP"},
	{name: "truncated timestamp", in: "<13>1 2003-10-11T22:14 h a - - - m", wantErr: "invalid TIMESTAMP"},
	{name: "missing SD", in: "<13>1 2003-10-11T22:14:15Z h a - -", wantErr: "message ends after MSGID"},
	{name: "empty hostname", in: "<13>1 -  app - - - x", wantErr: "offset 8: HOSTNAME is empty"},
	{name: "long app name", in: "<13>1 - h " + strings.Repeat("a", 256) + " - - - x", wantErr: "APP-NAME longer than 255 bytes"},
	{name: "SD not closed", in: "<13>1 - h a - - [id k=\"v\"", wantErr: "SD-ELEMENT not closed"},
	{name: "SD value not closed", in: "<13>1 - h a - - [id k=\"v\\\"] x", wantErr: "PARAM-VALUE not closed"},
	{name: "SD garbage", in: "<13>1 - h a - - x", wantErr: "STRUCTURED-DATA must be '-' or start with '['"},
	{name: "SD without SP", in: "<13>1 - h a - - -x", wantErr: "expected a space after STRUCTURED-DATA"},
	{name: "SD bad param", in: "<13>1 - h a - - [id k=v]", wantErr: `expected ="PARAM-VALUE"`},
	{name: "SD bad id", in: "<13>1 - h a - - [=x]", wantErr: "SD-ID missing or invalid"},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			loc := tc.loc
			if loc == nil {
				loc = time.UTC
			}
			now := tc.now
			if now.IsZero() {
				now = testNow
			}
			got, err := Parse([]byte(tc.in), now, loc)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) = %+v, %v; want error %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			checkMessage(t, got, tc.want, tc.ts)
		})
	}
}

func checkMessage(t *testing.T, got, want Message, ts string) {
	t.Helper()
	switch {
	case ts == "" && !got.Timestamp.IsZero():
		t.Errorf("Timestamp = %v, want none", got.Timestamp)
	case ts != "":
		wantTS, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Timestamp.Equal(wantTS) {
			t.Errorf("Timestamp = %v, want %v", got.Timestamp, wantTS)
		}
		_, gotOff := got.Timestamp.Zone()
		_, wantOff := wantTS.Zone()
		if gotOff != wantOff {
			t.Errorf("Timestamp offset %d, want %d", gotOff, wantOff)
		}
	}
	got.Timestamp = time.Time{}
	if got != want {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}

func TestParseNilLocation(t *testing.T) {
	m, err := Parse([]byte("<13>Nov 22 00:40:51 vm root: x"), testNow, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Timestamp.Location() != time.Local {
		t.Errorf("location %v, want Local", m.Timestamp.Location())
	}
}

func BenchmarkParse(b *testing.B) {
	for _, tc := range []struct{ name, in string }{
		{"rfc5424", `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry`},
		{"rfc5424_app", "<134>1 2026-11-21T10:00:00.123456Z benchhost benchapp 4242 - - bench seq=0000001234 payload abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789"},
		{"rfc3164", "<30>Nov  2 10:11:12 web01 systemd[1]: Started Session 5 of user root."},
		{"gunicorn", "<134>gunicorn.myproj.access: [1234] 127.0.0.1 - - [22/Nov/2026:00:40:51 +0000] \"GET / HTTP/1.1\" 200 12 \"-\" \"curl/7.88.1\"\x00"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			in := []byte(tc.in)
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				m, err := Parse(in, testNow, time.UTC)
				if err != nil {
					b.Fatal(err)
				}
				_ = ToRecord(m, testNow)
			}
		})
	}
}

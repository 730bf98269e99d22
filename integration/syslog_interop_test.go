package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-applog/caddy-applog/internal/testdaemon"
	"github.com/caddy-applog/caddy-applog/internal/testtool"
)

// syslogDaemon is an rsyslog or syslog-ng started by a test on loopback
// ports, writing every message it receives to out as
// "facility|severity|app-name|hostname|message".
type syslogDaemon struct {
	name             string
	tcpPort, udpPort int
	out              string
}

// startRsyslog runs Debian's rsyslogd in the foreground with imtcp
// (octet-counted framing is on by default) and imudp.
func startRsyslog(t *testing.T) *syslogDaemon {
	t.Helper()
	r := rsyslog(t)
	dir := t.TempDir()
	d := &syslogDaemon{name: "rsyslog", tcpPort: freePort(t), udpPort: freeUDPPort(t), out: filepath.Join(dir, "out.log")}
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="%d")
input(type="imudp" address="127.0.0.1" port="%d")
template(name="line" type="string" string="%%syslogfacility-text%%|%%syslogseverity-text%%|%%app-name%%|%%hostname%%|%%msg:2:$%%\n")
*.* action(type="omfile" file=%q template="line")
`, dir, d.tcpPort, d.udpPort, d.out)
	keepDaemon(t)(r.Start(context.Background(), dir, conf, d.tcpPort))
	return d
}

// rsyslog finds rsyslogd, or skips t (fails it under CI=true).
func rsyslog(t *testing.T) *testdaemon.Rsyslog {
	t.Helper()
	return &testdaemon.Rsyslog{Bin: requireTool(t, "rsyslogd")}
}

// rsyslogTLS is rsyslog with its gtls stream driver (Debian package
// rsyslog-gnutls), or skips t (fails it under CI=true).
func rsyslogTLS(t *testing.T) *testdaemon.Rsyslog {
	t.Helper()
	r := rsyslog(t)
	if !testdaemon.RsyslogGnuTLS() {
		testtool.Missing(t, "rsyslog's gtls stream driver (Debian package rsyslog-gnutls) is not installed")
	}
	return r
}

// syslogNG finds syslog-ng: in the unpacked syslog-ng-core package that
// .ci/install prepares (testtool.SyslogNGRoot), else on PATH; or skips
// t (fails it under CI=true).
func syslogNG(t *testing.T) *testdaemon.SyslogNG {
	t.Helper()
	if root := testtool.SyslogNGRoot(); root != "" {
		if ng, err := testdaemon.FindSyslogNG(root); err == nil {
			return ng
		}
	}
	requireTool(t, "syslog-ng")
	ng, err := testdaemon.FindSyslogNG("")
	if err != nil {
		t.Fatal(err)
	}
	return ng
}

// keepDaemon returns what takes testdaemon's start results: it fails t
// if the daemon did not start, and stops the daemon when t ends,
// showing its output if t failed.
func keepDaemon(t *testing.T) func(*testdaemon.Daemon, error) *testdaemon.Daemon {
	t.Helper()
	return func(d *testdaemon.Daemon, err error) *testdaemon.Daemon {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			d.Stop()
			if t.Failed() {
				t.Logf("%s output:\n%s", d.Name, d.Output())
			}
		})
		return d
	}
}

// startSyslogNG runs syslog-ng in the foreground with its syslog()
// source (RFC 5424, octet counting on TCP) on both transports.
func startSyslogNG(t *testing.T) *syslogDaemon {
	t.Helper()
	ng := syslogNG(t)
	dir := t.TempDir()
	d := &syslogDaemon{name: "syslog-ng", tcpPort: freePort(t), udpPort: freeUDPPort(t), out: filepath.Join(dir, "out.log")}
	conf := fmt.Sprintf(`@version: 3.38
options { keep-hostname(yes); log-msg-size(65536); };
source s_net {
	syslog(ip("127.0.0.1") port(%d) transport("tcp"));
	syslog(ip("127.0.0.1") port(%d) transport("udp"));
};
destination d_file { file(%q template("${FACILITY}|${LEVEL}|${PROGRAM}|${HOST}|${MSG}\n")); };
log { source(s_net); destination(d_file); };
`, d.tcpPort, d.udpPort, d.out)
	keepDaemon(t)(ng.Start(context.Background(), dir, conf, []int{d.tcpPort}))
	return d
}

const syslogInteropCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		facility shop
	}
	log to_tcp {
		include applog.shop
		level DEBUG
		output syslog tcp/127.0.0.1:TCPPORT {
			framing octet_counting
		}
		format syslog {
			facility local3
			wrap console
		}
	}
	log to_udp {
		include applog.shop
		level DEBUG
		output syslog udp/127.0.0.1:UDPPORT
		format syslog rfc3164 {
			facility local5
			wrap json
		}
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	log_ingest /_applog shop
}
`

// levels sent, and the syslog severity each must arrive as.
var syslogLevels = []struct{ level, severity string }{
	{"debug", "debug"}, {"info", "info"}, {"notice", "notice"}, {"warning", "warning"},
	{"error", "err"}, {"critical", "crit"}, {"alert", "alert"}, {"emerg", "emerg"},
}

func TestSyslogWriterInterop(t *testing.T) {
	for _, start := range []func(*testing.T) *syslogDaemon{startRsyslog, startSyslogNG} {
		d := start(t)
		t.Run(d.name, func(t *testing.T) {
			cfg := strings.NewReplacer("TCPPORT", fmt.Sprint(d.tcpPort), "UDPPORT", fmt.Sprint(d.udpPort)).Replace(syslogInteropCaddyfile)
			s := startCaddy(t, cfg)
			const perLevel = 5
			var body strings.Builder
			for i := range perLevel {
				for _, l := range syslogLevels {
					fmt.Fprintf(&body, `{"msg":"%s message %d with \"quotes\" and ünïcode","level":%q,"logger":"cart"}`+"\n", l.level, i, l.level)
				}
			}
			if code, resp := post(t, s.URL("/_applog"), "application/x-ndjson", []byte(body.String()), nil); code != 200 {
				t.Fatalf("post: %d %s", code, resp)
			}
			want := 2 * perLevel * len(syslogLevels) // over TCP and over UDP
			lines := waitTextLines(t, d.out, want)
			if len(lines) != want {
				t.Fatalf("%s received %d messages, want %d:\n%s", d.name, len(lines), want, strings.Join(lines, "\n"))
			}
			seen := map[string]int{}
			for _, line := range lines {
				parts := strings.SplitN(line, "|", 5)
				if len(parts) != 5 {
					t.Fatalf("bad line %q", line)
				}
				facility, severity, app, host, msg := parts[0], parts[1], parts[2], parts[3], parts[4]
				if facility != "local3" && facility != "local5" {
					t.Errorf("facility %q in %q", facility, line)
				}
				if app != "shop" || host != "127.0.0.1" {
					t.Errorf("app-name %q / hostname %q in %q", app, host, line)
				}
				found := false
				for _, l := range syslogLevels {
					if strings.Contains(msg, l.level+" message ") {
						found = true
						if severity != l.severity {
							t.Errorf("%s: severity %q, want %q: %q", l.level, severity, l.severity, line)
						}
						if !strings.Contains(msg, `ünïcode`) {
							t.Errorf("message mangled: %q", msg)
						}
						seen[facility+"/"+l.level]++
					}
				}
				if !found {
					t.Errorf("unexpected message %q", line)
				}
			}
			for _, f := range []string{"local3", "local5"} {
				for _, l := range syslogLevels {
					if seen[f+"/"+l.level] != perLevel {
						t.Errorf("%s %s: %d messages, want %d", f, l.level, seen[f+"/"+l.level], perLevel)
					}
				}
			}
		})
	}
}

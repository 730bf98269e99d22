package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/testdaemon"
)

// appsCaddyfile is a Caddyfile whose applog global option holds applog
// (receivers and app options), with every applog record, down to DEBUG,
// written as JSON to {{.Dir}}/apps.log, and a site that serves routes
// and answers "ok" to the rest.
func appsCaddyfile(applog, routes string) string {
	return `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {` + applog + `
	}
	log apps {
		include applog
		output file {{.Dir}}/apps.log
		level DEBUG
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1` + routes + `
	respond "ok"
}
`
}

var syslogReceiverCaddyfile = appsCaddyfile(`
		syslog udp/127.0.0.1:UDPPORT tcp/127.0.0.1:TCPPORT
		facility shop
		facility gunicorn`, "")

// sysLogClient logs through real SysLogHandlers, over UDP and over TCP
// (where Python ends each message with a NUL and nothing else).
const sysLogClient = `
import logging, logging.handlers, socket, sys
udp, tcp = int(sys.argv[1]), int(sys.argv[2])
for name, h in (("udp", logging.handlers.SysLogHandler(("127.0.0.1", udp), facility=logging.handlers.SysLogHandler.LOG_LOCAL4)),
                ("tcp", logging.handlers.SysLogHandler(("127.0.0.1", tcp), socktype=socket.SOCK_STREAM))):
    h.ident = "shop: "
    log = logging.getLogger("shop." + name)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(h)
    log.debug("%s debug", name)
    log.info("%s info ✓", name)
    log.warning("%s warning", name)
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("%s failed", name)
    log.critical("%s critical", name)
    h.close()
`

func syslogReceiverServer(t *testing.T) (s *server, udp, tcp int) {
	t.Helper()
	udp, tcp = freeUDPPort(t), freePort(t)
	cfg := strings.NewReplacer("UDPPORT", fmt.Sprint(udp), "TCPPORT", fmt.Sprint(tcp)).Replace(syslogReceiverCaddyfile)
	return startCaddy(t, cfg), udp, tcp
}

func TestSyslogReceiverPythonSysLogHandler(t *testing.T) {
	s, udp, tcp := syslogReceiverServer(t)
	if _, stderr := runPython(t, s.Dir, sysLogClient, fmt.Sprint(udp), fmt.Sprint(tcp)); strings.TrimSpace(stderr) != "" {
		t.Fatalf("python: %s", stderr)
	}
	lines := waitLines(t, filepath.Join(s.Dir, "apps.log"), 10)
	if len(lines) != 10 {
		t.Fatalf("got %d records, want 10: %v", len(lines), lines)
	}
	got := map[string]map[string]any{}
	for _, l := range lines {
		got[l["msg"].(string)] = l
	}
	for _, transport := range []string{"udp", "tcp"} {
		facility := map[string]string{"udp": "local4", "tcp": "user"}[transport]
		for msg, level := range map[string]string{
			transport + " debug":    "debug",
			transport + " info ✓":   "info",
			transport + " warning":  "warn",
			transport + " critical": "dpanic",
		} {
			l, ok := got[msg]
			if !ok {
				t.Errorf("missing %q", msg)
				continue
			}
			attrs, _ := l["attrs"].(map[string]any)
			if l["level"] != level || l["app"] != "shop" || l["logger"] != "applog.shop" || l["host"] != "127.0.0.1" || attrs["syslog_facility"] != facility {
				t.Errorf("%q: %v", msg, l)
			}
		}
		// The traceback arrives whole, as one multi-line message.
		var failed map[string]any
		for msg, l := range got {
			if strings.HasPrefix(msg, transport+" failed\n") {
				failed = l
			}
		}
		if failed == nil || failed["level"] != "error" || !strings.Contains(failed["msg"].(string), "Traceback (most recent call last):") ||
			!strings.HasSuffix(failed["msg"].(string), "ZeroDivisionError: division by zero") {
			t.Errorf("%s traceback: %v", transport, failed)
		}
	}
}

func TestSyslogReceiverGunicorn(t *testing.T) {
	gunicorn := requireTool(t, "gunicorn")
	s, udp, _ := syslogReceiverServer(t)
	app := filepath.Join(s.Dir, "wsgiapp.py")
	if err := os.WriteFile(app, []byte(`
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cmd := exec.Command(gunicorn, "--bind", fmt.Sprintf("127.0.0.1:%d", port), "--workers", "1",
		"--log-syslog", "--log-syslog-to", fmt.Sprintf("udp://127.0.0.1:%d", udp), "--log-syslog-prefix", "myproj",
		"--chdir", s.Dir, "wsgiapp:app")
	d := keepDaemon(t)(testdaemon.Start(context.Background(), "gunicorn", cmd, port))
	// Wait for the worker, not just the port: gunicorn 20.1 sends no
	// syslog access line for a request that reached it before its worker
	// booted (seen with a UDP relay in front of the receiver).
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(d.Output(), "Booting worker") {
		if time.Now().After(deadline) {
			t.Fatalf("gunicorn did not start:\n%s", d.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the worker's own start-up
	// gunicorn 20.1 now and then sends no syslog access line for a
	// request (a UDP relay in front of the receiver showed the line never
	// leaves gunicorn), so the request is repeated, a bounded
	// number of times, until one arrives.
	var access, errorLog map[string]any
	for try := 0; try < 5 && access == nil; try++ {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/some/path?q=1", port))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		deadline := time.Now().Add(2 * time.Second)
		for access == nil && time.Now().Before(deadline) {
			for _, l := range readLines(t, filepath.Join(s.Dir, "apps.log")) {
				switch l["logger"] {
				case "applog.gunicorn.myproj.access":
					access = l
				case "applog.gunicorn.myproj.error":
					errorLog = l
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if access == nil || errorLog == nil {
		t.Fatalf("gunicorn's access and error logs did not both arrive (access %v, error %v)\nall records: %v\ngunicorn:\n%s",
			access, errorLog, readLines(t, filepath.Join(s.Dir, "apps.log")), d.Output())
	}
	msg, _ := access["msg"].(string)
	if !strings.Contains(msg, `"GET /some/path?q=1 HTTP/1.1" 200`) || access["app"] != "gunicorn" || access["facility"] != "myproj.access" || access["level"] != "info" {
		t.Errorf("access record: %v", access)
	}
	if m, _ := errorLog["msg"].(string); !strings.Contains(m, "Starting gunicorn") && !strings.Contains(m, "Listening at") && !strings.Contains(m, "Booting worker") {
		t.Errorf("error log record: %v", errorLog)
	}
}

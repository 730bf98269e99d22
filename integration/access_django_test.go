package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/testdaemon"
	"github.com/caddy-applog/caddy-applog/internal/testtool"
)

// djangoCaddyfile is examples/django/Caddyfile on loopback ports: the
// public site (PROXY protocol from 127.0.0.1, trusted proxies
// 127.0.0.1 and 10.0.0.0/8, read right to left) reverse-proxies to
// gunicorn, naming the client in X-Real-IP, and writes its
// access log in Combined Log Format; a second, internal listener takes
// the records of Django and gunicorn; each stream has its own file.
const djangoCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	servers 127.0.0.1:{{.HTTPPort}} {
		trusted_proxies static 127.0.0.1/32 10.0.0.0/8
		trusted_proxies_strict
		client_ip_headers X-Forwarded-For
		listener_wrappers {
			proxy_protocol {
				timeout 5s
				allow 127.0.0.1/32
			}
		}
	}
	applog {
		facility django {
			level info
		}
		facility gunicorn
	}
	log django {
		include applog.django
		output rotate {{.Dir}}/django.log {
			every daily
			max_size 10MiB
			keep 5
		}
		format json
	}
	log gunicorn_access {
		include applog.gunicorn.gunicorn.access
		output rotate {{.Dir}}/gunicorn-access.log {
			every daily
			max_size 10MiB
			keep 5
		}
		format json
	}
	log gunicorn_error {
		include applog.gunicorn.gunicorn.error
		output rotate {{.Dir}}/gunicorn-error.log {
			every daily
			max_size 10MiB
			keep 5
		}
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	log access {
		output rotate {{.Dir}}/access.log {
			every daily
			max_size 10MiB
			keep 5
		}
		format access combined
	}
	reverse_proxy 127.0.0.1:GUNICORN_PORT {
		header_up X-Real-IP {client_ip}
	}
}

http://127.0.0.1:INGEST_PORT {
	bind 127.0.0.1
	handle /_applog/django {
		log_ingest django
	}
	handle /_applog/gunicorn {
		log_ingest gunicorn
	}
}
`

// requireDebianPython returns Debian's gunicorn after checking that
// Debian's python3 imports Django and gunicorn (apt's python3-django and
// gunicorn, which .ci/run installs). Under CI=true their absence fails.
func requireDebianPython(t *testing.T) string {
	t.Helper()
	const gunicorn, python = "/usr/bin/gunicorn", "/usr/bin/python3"
	missing := func(why string) {
		t.Helper()
		testtool.Missing(t, "%s (Debian's gunicorn and python3-django)", why)
	}
	if _, err := os.Stat(gunicorn); err != nil {
		missing(gunicorn + " not found")
	}
	out, err := exec.Command(python, "-c", "import django, gunicorn; print(django.__version__, gunicorn.__version__)").CombinedOutput()
	if err != nil {
		missing(fmt.Sprintf("%s cannot import django and gunicorn: %v: %s", python, err, out))
	}
	t.Logf("Debian's Django and gunicorn: %s", strings.TrimSpace(string(out)))
	return gunicorn
}

// startGunicorn runs gunicorn with the gunicorn.conf.py of dir (an
// example), bound to port and with env added, waits until it listens,
// and stops it (and its workers) at the end.
func startGunicorn(t *testing.T, gunicorn, dir string, port int, env ...string) *testdaemon.Daemon {
	t.Helper()
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gunicorn, "--config", "gunicorn.conf.py")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("GUNICORN_BIND=127.0.0.1:%d", port),
		"PYTHONDONTWRITEBYTECODE=1", // keep examples/ free of __pycache__
	)
	cmd.Env = append(cmd.Env, env...)
	return keepDaemon(t)(testdaemon.Start(context.Background(), "gunicorn", cmd, port))
}

// TestAccessDjangoStack runs the whole deployment: clients reach Caddy
// through a load balancer (PROXY protocol) or an internal proxy
// (X-Forwarded-For), Caddy reverse-proxies to Django under Debian's
// gunicorn, and Caddy's access log, gunicorn's access and error logs and
// Django's LOGGING each land in their own file, with the client's
// address right at every hop.
func TestAccessDjangoStack(t *testing.T) {
	gunicorn := requireDebianPython(t)
	gport, ingest := freePort(t), freePort(t)
	cf := strings.ReplaceAll(djangoCaddyfile, "GUNICORN_PORT", strconv.Itoa(gport))
	cf = strings.ReplaceAll(cf, "INGEST_PORT", strconv.Itoa(ingest))
	s := startCaddy(t, cf)
	startGunicorn(t, gunicorn, "../examples/django", gport,
		fmt.Sprintf("APPLOG_HOST=127.0.0.1:%d", ingest), "GUNICORN_WORKERS=2")
	public := fmt.Sprintf("127.0.0.1:%d", s.HTTPPort)

	const ua, referer = "e2e-test/1.0", "https://shop.example.com/cart"
	headers := func(xff string) []string {
		h := []string{"User-Agent: " + ua, "Referer: " + referer}
		if xff != "" {
			h = append(h, "X-Forwarded-For: "+xff)
		}
		return h
	}
	requests := []struct {
		path   string
		v1     bool   // a PROXY v1 header, else v2
		src    string // the PROXY header's source
		xff    string // what the client (or an internal proxy) sent
		status int
		client string // who Caddy, gunicorn and Django must name
		fwd    string // X-Forwarded-For as gunicorn receives it
	}{
		// The load balancer's PROXY header names the client; the
		// X-Forwarded-For it forged is dropped by Caddy.
		{"/hello?name=ann", true, "198.51.100.20:40001", "1.2.3.4", 200, "198.51.100.20", "198.51.100.20"},
		// An internal proxy (trusted) forwards for its client.
		{"/hello?name=bob", false, "10.1.2.3:40002", "203.0.113.50", 200, "203.0.113.50", "203.0.113.50, 10.1.2.3"},
		// The same, with a client that wrote its own X-Forwarded-For:
		// read right to left, the client is the address the trusted
		// proxy added, not the left end a naive reader would take.
		{"/hello?name=eve", false, "10.1.2.3:40003", "6.6.6.6, 203.0.113.66", 200, "203.0.113.66", "6.6.6.6, 203.0.113.66, 10.1.2.3"},
		{"/missing", false, "198.51.100.21:40004", "", 404, "198.51.100.21", "198.51.100.21"},
		{"/boom", false, "198.51.100.22:40005", "", 500, "198.51.100.22", "198.51.100.22"},
	}
	for _, r := range requests {
		version := byte(2)
		if r.v1 {
			version = 1
		}
		if st := rawRequest(t, public, proxyHeader(version, r.src, public), r.path, headers(r.xff)); st != r.status {
			t.Fatalf("GET %s: status %d, want %d", r.path, st, r.status)
		}
	}

	// Caddy's access log: Combined Log Format, the resolved client.
	access := waitTextLines(t, filepath.Join(s.Dir, "access.log"), len(requests))
	if len(access) != len(requests) {
		t.Fatalf("access.log has %d lines, want %d:\n%s", len(access), len(requests), strings.Join(access, "\n"))
	}
	for i, r := range requests {
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(r.client) + ` - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET ` +
			regexp.QuoteMeta(r.path) + ` HTTP/1\.1" ` + strconv.Itoa(r.status) + ` \d+ "` + regexp.QuoteMeta(referer) + `" "` + regexp.QuoteMeta(ua) + `"$`)
		if !re.MatchString(access[i]) {
			t.Errorf("access.log line %d:\n got %q\nwant %s", i+1, access[i], re)
		}
	}

	// gunicorn's access log, as gunicorn wrote it and sent it through
	// logging.handlers.HTTPHandler: the client Caddy named in X-Real-IP,
	// then (after the duration) gunicorn's peer, Caddy, and the
	// X-Forwarded-For chain Caddy passed on.
	gaccess := waitLines(t, filepath.Join(s.Dir, "gunicorn-access.log"), len(requests))
	if len(gaccess) != len(requests) {
		t.Fatalf("gunicorn-access.log has %d entries, want %d: %v", len(gaccess), len(requests), gaccess)
	}
	for _, r := range requests {
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(r.client) + ` - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET ` +
			regexp.QuoteMeta(r.path) + ` HTTP/1\.1" ` + strconv.Itoa(r.status) + ` \d+ "` + regexp.QuoteMeta(referer) + `" "` + regexp.QuoteMeta(ua) +
			`" \d+\.\d{6} 127\.0\.0\.1 "` + regexp.QuoteMeta(r.fwd) + `"$`)
		found := false
		for _, e := range gaccess {
			if msg, _ := e["msg"].(string); re.MatchString(msg) {
				found = true
				if e["logger"] != "applog.gunicorn.gunicorn.access" || e["level"] != "info" || e["host"] != "127.0.0.1" {
					t.Errorf("gunicorn access entry for %s: %v", r.path, e)
				}
			}
		}
		if !found {
			t.Errorf("no gunicorn access entry for %s matching %s in:\n%v", r.path, re, gaccess)
		}
	}

	// Caddy and gunicorn stamp the same request with the same clock and
	// zone (Django sets the process's TZ from TIME_ZONE: the example sets
	// UTC; with Django's default, gunicorn would write Chicago's zone).
	stamp := regexp.MustCompile(`\[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]`)
	for i, e := range gaccess {
		msg, _ := e["msg"].(string)
		gm, cm := stamp.FindStringSubmatch(msg), stamp.FindStringSubmatch(access[i])
		if gm == nil || cm == nil {
			continue
		}
		gt, err1 := time.Parse("02/Jan/2006:15:04:05 -0700", gm[1])
		ct, err2 := time.Parse("02/Jan/2006:15:04:05 -0700", cm[1])
		if err1 != nil || err2 != nil || gt.Sub(ct).Abs() > 5*time.Second || gm[1][len(gm[1])-5:] != cm[1][len(cm[1])-5:] {
			t.Errorf("gunicorn's time %s and Caddy's %s disagree", gm[1], cm[1])
		}
	}

	// Django's records, rendered, with the client the app read from
	// X-Real-IP; its request errors with the exception.
	django := waitLines(t, filepath.Join(s.Dir, "django.log"), 5)
	for _, w := range []struct{ logger, level, msg, exc string }{
		{"applog.django.shop.views", "info", "hello ann from 198.51.100.20", ""},
		{"applog.django.shop.views", "info", "hello bob from 203.0.113.50", ""},
		{"applog.django.shop.views", "info", "hello eve from 203.0.113.66", ""},
		{"applog.django.django.request", "warn", "Not Found: /missing", ""},
		{"applog.django.django.request", "error", "Internal Server Error: /boom", "ZeroDivisionError: division by zero"},
	} {
		found := false
		for _, e := range django {
			if e["msg"] != w.msg {
				continue
			}
			found = true
			attrs, _ := e["attrs"].(map[string]any)
			if e["logger"] != w.logger || e["level"] != w.level || (w.exc != "" && attrs["exc_info"] != w.exc) {
				t.Errorf("django entry %q: %v", w.msg, e)
			}
		}
		if !found {
			t.Errorf("no django entry %q in:\n%v", w.msg, django)
		}
	}

	// gunicorn's error log: the master's and the workers' messages.
	gerror := waitLines(t, filepath.Join(s.Dir, "gunicorn-error.log"), 3)
	var booting, listening bool
	for _, e := range gerror {
		msg, _ := e["msg"].(string)
		booting = booting || strings.HasPrefix(msg, "Booting worker with pid: ")
		listening = listening || msg == fmt.Sprintf("Listening at: http://127.0.0.1:%d (%v)", gport, e["attrs"].(map[string]any)["process"])
		if e["logger"] != "applog.gunicorn.gunicorn.error" {
			t.Errorf("gunicorn error entry with logger %v: %v", e["logger"], e)
		}
	}
	if !booting || !listening {
		t.Errorf("gunicorn-error.log lacks the start-up messages: %v", gerror)
	}

	// Each stream only in its own file.
	for file, prefix := range map[string]string{"django.log": "applog.django.", "gunicorn-access.log": "applog.gunicorn.gunicorn.access", "gunicorn-error.log": "applog.gunicorn.gunicorn.error"} {
		for _, e := range readLines(t, filepath.Join(s.Dir, file)) {
			if l, _ := e["logger"].(string); !strings.HasPrefix(l, prefix) {
				t.Errorf("%s holds an entry of %s", file, l)
			}
		}
	}
	for _, line := range access {
		if strings.HasPrefix(line, "{") {
			t.Errorf("access.log holds a JSON entry: %s", line)
		}
	}
}

// TestAccessDjangoExampleAdapts checks that the example deployment's
// Caddyfile is valid.
func TestAccessDjangoExampleAdapts(t *testing.T) {
	out, err := exec.Command(caddyBin, "adapt", "--config", "../examples/django/Caddyfile").CombinedOutput()
	if err != nil {
		t.Fatalf("caddy adapt examples/django/Caddyfile: %v\n%s", err, out)
	}
	for _, want := range []string{`"wrapper":"proxy_protocol"`, `"format":"access"`, `"preset":"combined"`, `"trusted_proxies_strict":1`, `"handler":"log_ingest"`, `"X-Real-Ip":["{http.vars.client_ip}"]`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("adapted config lacks %s", want)
		}
	}
}

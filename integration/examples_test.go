package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// examplesPorts are the loopback ports of examples/Caddyfile's receivers
// as examplesConfig moved them.
type examplesPorts struct {
	socket, datagram     int // python_socket, TCP and UDP
	syslogTCP, syslogUDP int // syslog for SysLogHandler
	gunicorn             int // syslog for gunicorn, UDP
}

// examplesConfig is examples/Caddyfile with its admin and site addresses
// on the test's template ports and every receiver on a free port (tests
// of other processes may run the same file at the same time). Its logs go
// under logs/ of Caddy's working directory, the server's Dir.
func examplesConfig(t *testing.T) (string, examplesPorts) {
	t.Helper()
	b, err := os.ReadFile("../examples/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	var p examplesPorts
	p.socket, p.datagram = freePort(t), freeUDPPort(t)
	p.syslogTCP, p.syslogUDP, p.gunicorn = freePort(t), freeUDPPort(t), freeUDPPort(t)
	s := string(b)
	for _, r := range []struct{ old, repl string }{
		{"admin 127.0.0.1:2019", "admin 127.0.0.1:{{.AdminPort}}"},
		{"http://127.0.0.1:8080 {", "http://127.0.0.1:{{.HTTPPort}} {"},
		{"python_socket tcp/127.0.0.1:9020", fmt.Sprintf("python_socket tcp/127.0.0.1:%d", p.socket)},
		{"python_socket udp/127.0.0.1:9021", fmt.Sprintf("python_socket udp/127.0.0.1:%d", p.datagram)},
		{"syslog tcp/127.0.0.1:5514", fmt.Sprintf("syslog tcp/127.0.0.1:%d", p.syslogTCP)},
		{"syslog udp/127.0.0.1:5514", fmt.Sprintf("syslog udp/127.0.0.1:%d", p.syslogUDP)},
		{"syslog udp/127.0.0.1:5515", fmt.Sprintf("syslog udp/127.0.0.1:%d", p.gunicorn)},
	} {
		if n := strings.Count(s, r.old); n != 1 {
			t.Fatalf("examples/Caddyfile has %q %d times; this test expects it once", r.old, n)
		}
		s = strings.Replace(s, r.old, r.repl, 1)
	}
	return s, p
}

// appLines waits (bounded) until the log file of app under s's logs/
// holds at least n entries whose logger starts with prefix, and returns
// those entries.
func appLines(t *testing.T, s *server, app, prefix string, n int) []map[string]any {
	t.Helper()
	path := filepath.Join(s.Dir, "logs", app+".log")
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []map[string]any
		for _, l := range readLines(t, path) {
			if logger, _ := l["logger"].(string); strings.HasPrefix(logger, prefix) {
				got = append(got, l)
			}
		}
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("%s: %d entries of %s, want %d: %v", path, len(got), prefix, n, got)
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runExample runs an example program from examples/python (or, for go,
// the repository root) and returns its exit code and stderr.
func runExample(t *testing.T, name string, args ...string) (code int, stderr string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = "../examples/python"
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1") // keep examples/ free of __pycache__
	var e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &e, &e
	err := runBounded(cmd, 2*time.Minute)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), e.String()
		}
		t.Fatalf("%s %v: %v\n%s", name, args, err, e.String())
	}
	return 0, e.String()
}

// closedPort is a loopback TCP port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", freePort(t))
}

// pythonRecords checks the four records every script of examples/python
// sends (logger shop.orders) as they landed: levels, rendered messages,
// the extra fields where the handler sends them, the traceback.
func pythonRecords(t *testing.T, lines []map[string]any, app string, levelNames []string, extras map[string]string) {
	t.Helper()
	want := []struct{ level, msg string }{
		{"debug", "cart c-7 has 3 items"},
		{"info", "order 1042 placed"},
		{"warn", "stock low for sku-9: 2 left"},
		{"error", "order 1042: total failed"},
	}
	for i, w := range want {
		l := lines[i]
		attrs, _ := l["attrs"].(map[string]any)
		msg, _ := l["msg"].(string)
		if l["app"] != app || l["facility"] != "shop.orders" || l["logger"] != "applog."+app+".shop.orders" ||
			l["level"] != w.level || l["level_name"] != levelNames[i] || l["host"] != "127.0.0.1" ||
			!strings.HasPrefix(msg, w.msg) {
			t.Errorf("record %d = %v\nwant app %s, level %s (%s), msg %q", i+1, l, app, w.level, levelNames[i], w.msg)
		}
		if i == 1 {
			for k, v := range extras {
				if fmt.Sprint(attrs[k]) != v {
					t.Errorf("record 2: attrs.%s = %v, want %s (extra=)", k, attrs[k], v)
				}
			}
		}
	}
	// The traceback: in exc_text where the handler sends the record's
	// fields, else in the message after its first line.
	last := lines[3]
	tb, _ := last["msg"].(string)
	if attrs, _ := last["attrs"].(map[string]any); attrs["exc_text"] != nil {
		tb, _ = attrs["exc_text"].(string)
	}
	if !strings.Contains(tb, "Traceback (most recent call last):") || !strings.Contains(tb, "1 / 0") ||
		!strings.HasSuffix(tb, "ZeroDivisionError: division by zero") {
		t.Errorf("record 4 carries no whole traceback: %v", last)
	}
}

// TestExamples runs every example client against examples/Caddyfile, as
// the examples' comments and docs/clients.md say to, and checks what
// lands in each app's file under logs/; and that each client that can
// tell a failure reports it with a non-zero exit.
func TestExamples(t *testing.T) {
	if os.Getenv("BILLING_LOG_SECRET") != "" {
		t.Skip("BILLING_LOG_SECRET is set: the example's secret is not the default")
	}
	caddyfile, ports := examplesConfig(t)
	s := startCaddy(t, caddyfile)
	host := fmt.Sprintf("127.0.0.1:%d", s.HTTPPort)

	t.Run("quick start curl", func(t *testing.T) {
		curl := requireTool(t, "curl")
		out, err := exec.Command(curl, "-sS", "-H", "Content-Type: application/json",
			"-d", `{"level":"warning","msg":"disk at 91%","logger":"ops"}`, s.URL("/_applog/myapp")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"accepted":1`) {
			t.Fatalf("curl: %v: %s", err, out)
		}
		l := appLines(t, s, "myapp", "applog.myapp.ops", 1)[0]
		if l["level"] != "warn" || l["msg"] != "disk at 91%" || l["app"] != "myapp" {
			t.Errorf("quick start record: %v", l)
		}
	})

	t.Run("unmatched ingest path", func(t *testing.T) {
		// The 404's reason must name exactly the log_ingest paths the file
		// routes, so the two cannot drift apart.
		src, err := os.ReadFile("../examples/Caddyfile")
		if err != nil {
			t.Fatal(err)
		}
		var routed []string
		for _, m := range regexp.MustCompile(`(?m)^\s*handle (/\S+) \{\n\s*log_ingest\b`).FindAllStringSubmatch(string(src), -1) {
			routed = append(routed, m[1])
		}
		if len(routed) < 3 {
			t.Fatalf("found only %v as log_ingest routes in examples/Caddyfile", routed)
		}
		for _, path := range []string{"/_applog/myap", "/_applog", "/_applog/myapp/x"} {
			st, body := post(t, s.URL(path), "application/json", []byte(`{"msg":"lost"}`), nil)
			_, list, _ := strings.Cut(body, ";") // after the path asked for
			named := regexp.MustCompile(`/_applog/\w+`).FindAllString(list, -1)
			slices.Sort(named)
			want := slices.Sorted(slices.Values(routed))
			if st != http.StatusNotFound || strings.Contains(strings.TrimSpace(body), "\n") ||
				!strings.Contains(body, path) || !slices.Equal(slices.Compact(named), want) {
				t.Errorf("POST %s: %d %q; want 404, one line naming %s and the ingest paths %v", path, st, body, path, want)
			}
		}
	})

	t.Run("http_handler.py", func(t *testing.T) {
		py := requireTool(t, "python3")
		if code, stderr := runExample(t, py, "http_handler.py", host); code != 0 || stderr != "" {
			t.Fatalf("exit %d:\n%s", code, stderr)
		}
		lines := appLines(t, s, "myapp", "applog.myapp.shop.orders", 4)
		pythonRecords(t, lines, "myapp", []string{"DEBUG", "INFO", "WARNING", "ERROR"}, map[string]string{"order_id": "1042", "customer": "c-7"})

		// Refused (the admin endpoint answers, not with 200) and unreachable.
		code, stderr := runExample(t, py, "http_handler.py", fmt.Sprintf("127.0.0.1:%d", s.AdminPort))
		if code != 1 || !strings.Contains(stderr, "caddy-applog refused the record") {
			t.Errorf("against a server that refuses: exit %d:\n%s", code, stderr)
		}
		if code, stderr := runExample(t, py, "http_handler.py", closedPort(t)); code != 1 || !strings.Contains(stderr, "Connection refused") {
			t.Errorf("against a closed port: exit %d:\n%s", code, stderr)
		}
	})

	t.Run("socket_handler.py", func(t *testing.T) {
		py := requireTool(t, "python3")
		if code, stderr := runExample(t, py, "socket_handler.py", fmt.Sprintf("127.0.0.1:%d", ports.socket)); code != 0 || stderr != "" {
			t.Fatalf("exit %d:\n%s", code, stderr)
		}
		lines := appLines(t, s, "pysocket", "applog.pysocket.", 4)
		pythonRecords(t, lines, "pysocket", []string{"DEBUG", "INFO", "WARNING", "ERROR"}, map[string]string{"order_id": "1042", "customer": "c-7"})
		if code, stderr := runExample(t, py, "socket_handler.py", closedPort(t)); code != 1 || !strings.Contains(stderr, "no connection to") {
			t.Errorf("against a closed port: exit %d:\n%s", code, stderr)
		}
	})

	t.Run("datagram_handler.py", func(t *testing.T) {
		py := requireTool(t, "python3")
		if code, stderr := runExample(t, py, "datagram_handler.py", fmt.Sprintf("127.0.0.1:%d", ports.datagram)); code != 0 || stderr != "" {
			t.Fatalf("exit %d:\n%s", code, stderr)
		}
		lines := appLines(t, s, "pydatagram", "applog.pydatagram.", 4)
		pythonRecords(t, lines, "pydatagram", []string{"DEBUG", "INFO", "WARNING", "ERROR"}, map[string]string{"order_id": "1042", "customer": "c-7"})
	})

	t.Run("syslog_handler.py", func(t *testing.T) {
		py := requireTool(t, "python3")
		levels := []string{"debug", "info", "warning", "err"}
		for i, addr := range []string{fmt.Sprintf("tcp/127.0.0.1:%d", ports.syslogTCP), fmt.Sprintf("udp/127.0.0.1:%d", ports.syslogUDP)} {
			if code, stderr := runExample(t, py, "syslog_handler.py", addr); code != 0 || stderr != "" {
				t.Fatalf("%s: exit %d:\n%s", addr, code, stderr)
			}
			lines := appLines(t, s, "pysyslog", "applog.pysyslog.", 4*(i+1))[4*i:]
			pythonRecords(t, lines, "pysyslog", levels, nil)
			// extra= travels only as the format writes it into the text.
			if msg, _ := lines[1]["msg"].(string); !strings.Contains(msg, "order_id=1042") {
				t.Errorf("%s: record 2 = %q, want the format's order_id=1042", addr, msg)
			}
		}
		if code, stderr := runExample(t, py, "syslog_handler.py", "tcp/"+closedPort(t)); code != 1 || !strings.Contains(stderr, "cannot connect") {
			t.Errorf("against a closed port: exit %d:\n%s", code, stderr)
		}
	})

	t.Run("slogclient", func(t *testing.T) {
		goTool := requireTool(t, "go")
		bin := filepath.Join(t.TempDir(), "slogclient")
		build := exec.Command(goTool, "build", "-o", bin, "./examples/slogclient")
		build.Dir = ".." // the root module, which examples/ belongs to
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		if code, stderr := runExample(t, bin, s.URL("/_applog/goapp")); code != 0 || stderr != "" {
			t.Fatalf("exit %d:\n%s", code, stderr)
		}
		lines := appLines(t, s, "goapp", "applog.goapp.", 4)
		for i, w := range []struct{ level, levelName, msg string }{
			{"info", "INFO", "invoice sent"}, {"warn", "WARN", "retrying payment"},
			{"debug", "DEBUG", "cache miss"}, {"error", "ERROR+2", "ledger out of balance"},
		} {
			if l := lines[i]; l["level"] != w.level || l["level_name"] != w.levelName || l["msg"] != w.msg ||
				l["logger"] != "applog.goapp.billing.worker" {
				t.Errorf("record %d = %v, want %+v", i+1, l, w)
			}
		}

		// A facility that needs a signature answers 401: each refusal is
		// on stderr and the exit status says so.
		code, stderr := runExample(t, bin, s.URL("/_applog/billing"))
		if code != 1 || strings.Count(stderr, "401 Unauthorized") != 4 || !strings.Contains(stderr, "4 of 4 records not accepted") {
			t.Errorf("against a signed facility: exit %d:\n%s", code, stderr)
		}
		if lines := readLines(t, filepath.Join(s.Dir, "logs", "billing.log")); len(lines) != 0 {
			t.Errorf("unsigned records in billing.log: %v", lines)
		}
	})

	t.Run("gunicorn --log-syslog", func(t *testing.T) {
		gunicorn := requireTool(t, "gunicorn")
		port := freePort(t)
		startGunicorn(t, gunicorn, "../examples/python", port,
			fmt.Sprintf("APPLOG_SYSLOG_GUNICORN=udp://127.0.0.1:%d", ports.gunicorn))
		for _, path := range []string{"/", "/boom"} {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}

		access := appLines(t, s, "gunicorn", "applog.gunicorn.exampleapp.access", 2)
		for i, want := range []string{`"GET / HTTP/1.1" 200 6`, `"GET /boom HTTP/1.1" 500`} {
			if msg, _ := access[i]["msg"].(string); access[i]["level"] != "info" || access[i]["facility"] != "exampleapp.access" || !strings.Contains(msg, want) {
				t.Errorf("access line %d = %v, want %s", i+1, access[i], want)
			}
		}
		var started, boom bool
		deadline := time.Now().Add(10 * time.Second)
		for !(started && boom) && time.Now().Before(deadline) {
			for _, l := range readLines(t, filepath.Join(s.Dir, "logs", "gunicorn.log")) {
				msg, _ := l["msg"].(string)
				if l["logger"] != "applog.gunicorn.exampleapp.error" {
					continue
				}
				started = started || strings.Contains(msg, "Starting gunicorn")
				boom = boom || (l["level"] == "error" && strings.Contains(msg, "Error handling request /boom\nTraceback (most recent call last):") &&
					strings.HasSuffix(msg, "RuntimeError: boom requested"))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !started || !boom {
			t.Errorf("gunicorn's error log: start-up line %v, /boom traceback %v; want both:\n%s", started, boom, readFile(t, filepath.Join(s.Dir, "logs", "gunicorn.log")))
		}
	})

	t.Run("log_status", func(t *testing.T) {
		var page struct {
			Records []struct{ App string } `json:"records"`
		}
		getJSON(t, s.URL("/status?format=json&limit=1000"), &page)
		seen := map[string]bool{}
		for _, r := range page.Records {
			seen[r.App] = true
		}
		// Every app whose file has entries (a subtest skipped for want
		// of its tool leaves its file empty).
		for _, app := range []string{"myapp", "goapp", "pysocket", "pydatagram", "pysyslog", "gunicorn"} {
			if len(readLines(t, filepath.Join(s.Dir, "logs", app+".log"))) > 0 && !seen[app] {
				t.Errorf("the status page shows no record of %s (apps seen: %v)", app, seen)
			}
		}
	})

	// Every app's file holds JSON entries of that app only.
	for _, app := range []string{"myapp", "goapp", "pysocket", "pydatagram", "pysyslog", "gunicorn"} {
		for i, l := range readLines(t, filepath.Join(s.Dir, "logs", app+".log")) {
			if l["app"] != app {
				t.Errorf("logs/%s.log entry %d is of app %v: %v", app, i+1, l["app"], l)
			}
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

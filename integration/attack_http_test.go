package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// httpAttacks are the attacks on the log_ingest handler, made against
// examples/Caddyfile itself (on free ports).
var httpAttacks = []attack{
	{
		Name:    "slow bodies: 200 clients announce 10 MiB (one 1 KiB) and trickle a byte every 2s",
		Outcome: "each is cut with 408 within read_body_timeout (10s) and closed; Caddy's heap grows < 50 MiB; good posts still answer (median < 250ms here, a few ms unloaded)",
		Run:     attackSlowBodies,
	},
	{
		Name:    "unsigned routing: ?app=otherapp on the route fixed to myapp",
		Outcome: "403 with the reason a body field \"app\":\"otherapp\" gets; nothing filed under myapp",
		Run:     attackQueryApp,
	},
	{
		Name:    "unsigned routing: a signed POST with ?app=, ?facility= or ?level=",
		Outcome: "400: the signature does not cover the query, put it in the signed body; the signed body alone still lands",
		Run:     attackSignedQuery,
	},
	{
		Name:    "careless: JSON posted with curl -d (form Content-Type)",
		Outcome: "415 saying the body looks like JSON and to send Content-Type: application/json",
		Run:     attackJSONAsForm,
	},
	{
		Name:    "careless: \"level\":\"loud\" and \"msg\":{\"a\":1}",
		Outcome: "400 naming the accepted levels for loud; the object message is written as its JSON text",
		Run:     attackLevelAndMessage,
	},
	{
		Name:    "careless: NDJSON whose line 2 is broken, after CRLF and blank lines",
		Outcome: "400 naming line 2 (the line that is wrong, counting blank lines)",
		Run:     attackNDJSONLine,
	},
	{
		Name:    "careless: HTTPHandler posting to a mistyped /_applog/otherapp",
		Outcome: "404 naming the ingest paths that exist, not examples/Caddyfile's catch-all 200",
		Run:     attackMistypedPath,
	},
	{
		Name:    "amplification: HTTPHandler form whose msg is %65536s 15 times",
		Outcome: "the entry written is at most 4 times the form's size, cut and marked truncated",
		Run:     attackFormatAmplification,
	},
}

// examplesCaddyfile is examples/Caddyfile with its admin and site
// addresses on the test's ports and its receivers on free ports (see
// examplesConfig); its logs go under Caddy's working directory, the
// server's Dir.
func examplesCaddyfile(t *testing.T) string {
	t.Helper()
	s, _ := examplesConfig(t)
	return s
}

// examplesSecret is examples/Caddyfile's billing secret when
// BILLING_LOG_SECRET is not set.
const examplesSecret = "change-me"

func startExamples(t *testing.T) *server {
	t.Helper()
	if os.Getenv("BILLING_LOG_SECRET") != "" {
		t.Skip("BILLING_LOG_SECRET is set: the example's secret is not the default")
	}
	return startCaddy(t, examplesCaddyfile(t))
}

// slowResult is what one trickling client saw.
type slowResult struct {
	status string        // the status line, if a response came
	body   string        // all that came after the header
	after  time.Duration // from the end of the header to the response
	closed bool          // the server closed the connection
	err    error
}

// trickle announces a JSON body of size bytes and sends one byte of it
// every interval until the server answers or limit passes.
func trickle(addr, path string, size int, interval, limit time.Duration) (res slowResult) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return slowResult{err: err}
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(start.Add(limit + 5*time.Second))
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, addr, size)
	if _, err := io.WriteString(c, head); err != nil {
		return slowResult{err: err}
	}
	start = time.Now()
	var got []byte
	buf := make([]byte, 4096)
	for len(got) == 0 && time.Since(start) < limit {
		if _, err := c.Write([]byte{' '}); err != nil {
			break // closed: read what it said
		}
		_ = c.SetReadDeadline(time.Now().Add(interval))
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			res.closed = true
			break
		}
	}
	res.after = time.Since(start)
	// The rest of the response, then the end of the connection.
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for !res.closed {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			res.closed = true
		} else if err != nil {
			break
		}
	}
	head, body, _ := strings.Cut(string(got), "\r\n\r\n")
	res.status, _, _ = strings.Cut(head, "\r\n")
	res.body = body
	return res
}

func attackSlowBodies(t *testing.T) {
	const (
		clients  = 200
		interval = 2 * time.Second
		timeout  = 10 * time.Second // read_body_timeout's default
		slack    = 5 * time.Second
	)
	s := startExamples(t)
	good := func() (time.Duration, int) {
		start := time.Now()
		st, _ := post(t, s.URL("/_applog/myapp"), "application/json", []byte(`{"msg":"still served","logger":"web"}`), nil)
		return time.Since(start), st
	}
	good() // warm up: pools, files
	base, err := caddyHeap(s)
	if err != nil {
		t.Fatal(err)
	}

	// Sample the heap until every slow client is done.
	var wg sync.WaitGroup
	peak := base
	stopSampling := every(200*time.Millisecond, func() {
		if h, err := caddyHeap(s); err == nil && h > peak {
			peak = h
		}
	})
	results := make([]slowResult, clients)
	addr := fmt.Sprintf("127.0.0.1:%d", s.HTTPPort)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			size := 10 << 20
			if i == 0 {
				size = 1 << 10 // small enough for the server to drain: it must not
			}
			results[i] = trickle(addr, "/_applog/myapp", size, interval, timeout+slack)
		}()
	}

	// A well-behaved client meanwhile.
	time.Sleep(time.Second)
	var latencies []time.Duration
	for range 5 {
		d, st := good()
		if st != http.StatusOK {
			t.Errorf("good post during the attack: status %d", st)
		}
		latencies = append(latencies, d)
		time.Sleep(time.Second)
	}
	wg.Wait()
	stopSampling()

	growth := peak - base
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	var slowest time.Duration
	cut, failed := 0, 0
	for i, r := range results {
		slowest = max(slowest, r.after)
		var why string
		switch {
		case r.err != nil:
			why = r.err.Error()
		case r.status != "HTTP/1.1 408 Request Timeout" || r.body != "request body arrived too slowly (read_body_timeout 10s)\n":
			why = fmt.Sprintf("got %q %q after %v, want 408 request body arrived too slowly", r.status, r.body, r.after.Round(time.Millisecond))
		case r.after > timeout+slack:
			why = fmt.Sprintf("cut after %v, want within %v", r.after, timeout+slack)
		case !r.closed:
			why = "connection left open after the 408"
		default:
			cut++
			continue
		}
		if failed++; failed <= 3 {
			t.Errorf("client %d: %s", i, why)
		}
	}
	if failed > 3 {
		t.Errorf("... and %d more clients", failed-3)
	}
	t.Logf("%d slow clients: %d cut with 408, the last after %v; heap %.1f MiB before, peak growth %.1f MiB; good posts answered in %v (median %v)",
		clients, cut, slowest.Round(time.Millisecond), float64(base)/(1<<20), float64(growth)/(1<<20),
		latencies[len(latencies)-1].Round(time.Millisecond), latencies[len(latencies)/2].Round(time.Millisecond))
	if growth > 50<<20 {
		t.Errorf("heap grew by %.1f MiB under %d slow clients, want < 50 MiB", float64(growth)/(1<<20), clients)
	}
	// Loose bounds for a loaded machine: unloaded, every post answers in
	// a few milliseconds.
	if median, worst := latencies[len(latencies)/2], latencies[len(latencies)-1]; median > 250*time.Millisecond || worst > 2*time.Second {
		t.Errorf("good posts during the attack took %v (median %v), want < 2s (median < 250ms)", worst, median)
	}
	if lines := waitLines(t, filepath.Join(s.Dir, "logs", "myapp.log"), 6); len(lines) != 6 {
		t.Errorf("myapp.log has %d entries, want the 6 good posts", len(lines))
	}
}

// curlPost posts body with curl's own defaults plus args, returning the
// status and the response.
func curlPost(t *testing.T, url string, body []byte, args ...string) (int, string) {
	t.Helper()
	curl := requireTool(t, "curl")
	path := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"-sS", "-w", "\n%{http_code}"}, args...)
	argv = append(argv, "--data-binary", "@"+path, url)
	out, err := exec.Command(curl, argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	i := bytes.LastIndexByte(out, '\n')
	if i < 0 {
		t.Fatalf("curl output %q", out)
	}
	resp, code := string(out[:i]), string(out[i+1:])
	status, err := strconv.Atoi(code)
	if err != nil {
		t.Fatalf("curl output %q", out)
	}
	return status, resp
}

func attackQueryApp(t *testing.T) {
	s := startExamples(t)
	const reason = `names app "otherapp", but this endpoint accepts only app "myapp"`
	st, body := post(t, s.URL("/_applog/myapp?app=otherapp"), "application/json", []byte(`{"msg":"filed elsewhere?"}`), nil)
	if st != http.StatusForbidden || !strings.Contains(body, reason) {
		t.Errorf("?app=otherapp: %d %q, want 403 %q", st, body, reason)
	}
	st, body = post(t, s.URL("/_applog/myapp"), "application/json", []byte(`{"msg":"filed elsewhere?","app":"otherapp"}`), nil)
	if st != http.StatusForbidden || !strings.Contains(body, reason) {
		t.Errorf(`"app":"otherapp": %d %q, want 403 %q`, st, body, reason)
	}
	// The route's own app in the query is no conflict.
	if st, body := post(t, s.URL("/_applog/myapp?app=myapp"), "application/json", []byte(`{"msg":"mine"}`), nil); st != http.StatusOK {
		t.Errorf("?app=myapp: %d %q", st, body)
	}
	waitLines(t, filepath.Join(s.Dir, "logs", "myapp.log"), 1)
	time.Sleep(200 * time.Millisecond)
	lines := readLines(t, filepath.Join(s.Dir, "logs", "myapp.log"))
	if len(lines) != 1 || lines[0]["msg"] != "mine" {
		t.Errorf("myapp.log = %v, want only the record posted without a conflict", lines)
	}
}

func attackSignedQuery(t *testing.T) {
	s := startExamples(t)
	body := []byte(`{"msg":"charged","logger":"billing.cards"}`)
	for _, q := range []string{"app=billing", "app=myapp", "facility=billing.refunds", "level=debug"} {
		key, _, _ := strings.Cut(q, "=")
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		h := http.Header{"X-Applog-Signature": {sign(examplesSecret, ts, body)}}
		st, resp := post(t, s.URL("/_applog/billing?"+q), "application/json", body, h)
		want := fmt.Sprintf("the %s query parameter is not covered by the X-Applog-Signature signature, which signs the body only: put %s in the signed body", key, key)
		if st != http.StatusBadRequest || !strings.Contains(resp, want) {
			t.Errorf("signed POST ?%s: %d %q, want 400 %q", q, st, resp, want)
		}
	}
	// The same facility, signed in the body, lands.
	signed := []byte(`{"msg":"refunded","logger":"billing.cards","facility":"refunds"}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	if st, resp := post(t, s.URL("/_applog/billing"), "application/json", signed, http.Header{"X-Applog-Signature": {sign(examplesSecret, ts, signed)}}); st != http.StatusOK {
		t.Fatalf("signed body: %d %q", st, resp)
	}
	waitLines(t, filepath.Join(s.Dir, "logs", "billing.log"), 1)
	time.Sleep(200 * time.Millisecond)
	lines := readLines(t, filepath.Join(s.Dir, "logs", "billing.log"))
	if len(lines) != 1 || lines[0]["msg"] != "refunded" || lines[0]["facility"] != "refunds" {
		t.Errorf("billing.log = %v, want only the record routed by its signed body", lines)
	}
}

func attackJSONAsForm(t *testing.T) {
	s := startExamples(t)
	for _, body := range []string{`{"msg":"hello","level":"info"}`, "{\"msg\":\"a\"}\n{\"msg\":\"b\"}\n", `[{"msg":"a"}]`} {
		// No -H: curl sends any -d body as application/x-www-form-urlencoded.
		st, resp := curlPost(t, s.URL("/_applog/myapp"), []byte(body))
		want := "looks like JSON (it starts with '" + body[:1] + "') but was sent as application/x-www-form-urlencoded (curl -d's default): send it with Content-Type: application/json"
		if st != http.StatusUnsupportedMediaType || !strings.Contains(resp, want) {
			t.Errorf("curl -d %q: %d %q, want 415 %q", body, st, resp, want)
		}
	}
	// Sent as JSON, it lands.
	if st, resp := curlPost(t, s.URL("/_applog/myapp"), []byte(`{"msg":"hello"}`), "-H", "Content-Type: application/json"); st != http.StatusOK {
		t.Errorf("with Content-Type: %d %q", st, resp)
	}
}

func attackLevelAndMessage(t *testing.T) {
	s := startExamples(t)
	json := []string{"-H", "Content-Type: application/json"}
	st, resp := curlPost(t, s.URL("/_applog/myapp"), []byte(`{"msg":"disk full","level":"loud"}`), json...)
	if st != http.StatusBadRequest || !strings.Contains(resp, `unknown level "loud": use a number on Python's scale (10 DEBUG ... 50 CRITICAL) or one of debug, info, warning, error, critical`) {
		t.Errorf("level loud: %d %q", st, resp)
	}
	// The same from a form without levelno (a hand-made HTTPHandler post).
	st, resp = curlPost(t, s.URL("/_applog/myapp"), []byte("msg=disk+full&levelname=loud"))
	if st != http.StatusBadRequest || !strings.Contains(resp, `unknown levelname "loud" and no levelno`) {
		t.Errorf("form levelname loud: %d %q", st, resp)
	}
	if st, resp := curlPost(t, s.URL("/_applog/myapp"), []byte(`{"msg":{"a":1, "b":[true,null]},"level":"WARNING"}`), json...); st != http.StatusOK {
		t.Fatalf("object message: %d %q", st, resp)
	}
	lines := waitLines(t, filepath.Join(s.Dir, "logs", "myapp.log"), 1)
	if len(lines) != 1 || lines[0]["msg"] != `{"a":1,"b":[true,null]}` || lines[0]["level"] != "warn" {
		t.Errorf("myapp.log = %v, want one warning whose msg is the object's JSON text", lines)
	}
}

func attackNDJSONLine(t *testing.T) {
	s := startExamples(t)
	for _, tc := range []struct{ name, body, want string }{
		{"missing brace", "{\"msg\":\"one\"}\r\n{\"msg\":\"two\"\r\n\r\n{\"msg\":\"three\"}\r\n", "line 2: unexpected end of line, expected ',' or '}' after value of \"msg\""},
		{"blank lines first", "\n\n{\"msg\":\"one\",}\n{\"msg\":\"two\"}\n", "line 3: expected a string"},
		{"batch line", "[{\"msg\":\"a\"},{\"msg\":\"b\"}]\n[{\"msg\":\"c\"} {\"msg\":\"d\"}]\n\n{}\n", "line 2: expected ',' or ']' in array"},
	} {
		st, resp := curlPost(t, s.URL("/_applog/myapp"), []byte(tc.body), "-H", "Content-Type: application/x-ndjson")
		if st != http.StatusBadRequest || !strings.Contains(resp, "malformed application/x-ndjson body: "+tc.want) {
			t.Errorf("%s: %d %q, want 400 %q", tc.name, st, resp, tc.want)
		}
	}
}

// pyMistyped logs through a stock HTTPHandler to the URL it is given,
// which ignores the response, as HTTPHandler does.
const pyMistyped = `
import logging, logging.handlers, sys
log = logging.getLogger("web")
log.propagate = False
log.addHandler(logging.handlers.HTTPHandler(sys.argv[1], sys.argv[2], method="POST"))
log.warning("lost %s", "record")
print("sent")
`

func attackMistypedPath(t *testing.T) {
	s := startExamples(t)
	host := fmt.Sprintf("127.0.0.1:%d", s.HTTPPort)
	if out, _ := runPython(t, s.Dir, pyMistyped, host, "/_applog/otherapp"); strings.TrimSpace(out) != "sent" {
		t.Fatalf("python: %q", out)
	}
	// What the handler was told (it does not look):
	want := "no log_ingest route at /_applog/otherapp; ingest paths here: /_applog/myapp, /_applog/billing, /_applog/goapp"
	for _, path := range []string{"/_applog/otherapp", "/_applog/myapp/", "/_applog"} {
		st, resp := curlPost(t, s.URL(path), []byte("msg=x"))
		want := strings.Replace(want, "/_applog/otherapp", path, 1)
		if st != http.StatusNotFound || resp != want {
			t.Errorf("POST %s: %d %q, want 404 %q", path, st, resp, want)
		}
	}
	// The rest of the site is untouched.
	if resp, err := http.Get(s.URL("/")); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// pyAmplify sends one record through a stock HTTPHandler and prints the
// size of the form it posted.
const pyAmplify = `
import logging, logging.handlers, sys, urllib.parse
class Measured(logging.handlers.HTTPHandler):
    def mapLogRecord(self, record):
        d = super().mapLogRecord(record)
        print(len(urllib.parse.urlencode(d)))
        return d
log = logging.getLogger("web")
log.propagate = False
log.addHandler(Measured(sys.argv[1], "/_applog/myapp", method="POST"))
log.warning("%65536s" * 15, *(["x"] * 15))
`

func attackFormatAmplification(t *testing.T) {
	s := startExamples(t)
	out, _ := runPython(t, s.Dir, pyAmplify, fmt.Sprintf("127.0.0.1:%d", s.HTTPPort))
	sent, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("python: %q", out)
	}
	path := filepath.Join(s.Dir, "logs", "myapp.log")
	lines := waitLines(t, path, 1)
	if len(lines) != 1 {
		t.Fatalf("myapp.log has %d entries, want 1", len(lines))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ratio := float64(len(data)) / float64(sent)
	t.Logf("form of %d bytes, entry of %d bytes: %.2f bytes written per byte received", sent, len(data), ratio)
	if ratio > 4 {
		t.Errorf("%d bytes written for a %d-byte form: %.1fx, want <= 4x", len(data), sent, ratio)
	}
	msg, _ := lines[0]["msg"].(string)
	if !strings.HasPrefix(msg, strings.Repeat(" ", 1000)) || strings.Contains(msg, "%") {
		t.Errorf("msg is not the rendered, cut message: %.80q", msg)
	}
	if lines[0]["truncated"] != true {
		t.Logf("entry not marked truncated (the app's record bound marks it): %.200s", data)
	}
}

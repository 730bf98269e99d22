package integration

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const ingestCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		facility shop {
			level debug
		}
		facility shop:shop.noisy {
			level error
		}
		facility goapp
		facility billing {
			secret s3cret
		}
	}
	log shop {
		include applog.shop
		output file {{.Dir}}/shop.log
		level DEBUG
		format json {
			time_format unix_nano
		}
	}
	log goapp {
		include applog.goapp
		output file {{.Dir}}/goapp.log
		level DEBUG
		format json {
			time_format unix_nano
		}
	}
	log billing {
		include applog.billing
		output file {{.Dir}}/billing.log
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	handle /_applog/shop {
		log_ingest shop
	}
	handle /_applog/goapp {
		log_ingest goapp
	}
	handle /_applog/billing {
		log_ingest billing
	}
	handle /_applog/small {
		log_ingest shop {
			max_body_size 1KiB
		}
	}
	handle /_any {
		log_ingest
	}
	handle /otlp/shop/* {
		log_ingest shop
	}
	handle /otlp/* {
		log_ingest
	}
}
`

// pythonClient logs through a real logging.handlers.HTTPHandler and
// prints, for each record, its __dict__ as HTTPHandler sent it (every
// value str()-ed) plus what getMessage() and repr(created) give.
const pythonClient = `
import json, logging, logging.handlers, sys
host, method, url = sys.argv[1], sys.argv[2], sys.argv[3]
records = []
class Capture(logging.Handler):
    def emit(self, record):
        records.append(record)
top = logging.getLogger("shop")
top.setLevel(logging.DEBUG)
top.propagate = False
top.addHandler(logging.handlers.HTTPHandler(host, url, method=method))
top.addHandler(Capture())
log = logging.getLogger("shop.views")
log.info("user %s logged in from %s", "alice", "10.0.0.7")
log.warning("%(count)d items at %(ratio).2f%% off for %(name)r", {"count": 3, "ratio": 12.5, "name": "O'Brien \"Jr\""})
try:
    1 / 0
except ZeroDivisionError:
    log.exception("division failed for %r", [1, 0])
log.info("héllo %s ✓ 日本語 %d%%", "wörld", 100)
log.debug("no args, so 100% stays as it is")
logging.getLogger("shop.noisy.sub").info("below the facility's level")
log.info("with extra fields", extra={"request_id": "r-123", "user_id": 42})
log.error("big %d, hex %#x, float %s, exp %.3e, %-6s|", 2**70, 255, 3.0, 12345.678, "ab")
out = []
for r in records:
    d = {k: str(v) for k, v in r.__dict__.items()}
    d["__message__"] = r.getMessage()
    d["__created__"] = repr(r.created)
    out.append(d)
print(json.dumps(out))
`

func TestPythonHTTPHandler(t *testing.T) {
	s := startCaddy(t, ingestCaddyfile)
	host := fmt.Sprintf("127.0.0.1:%d", s.HTTPPort)
	for _, tc := range []struct{ method, url string }{
		{"POST", "/_applog/shop"},
		{"GET", "/_any?app=shop"}, // app from the query; the record is appended with '&'
	} {
		t.Run(tc.method, func(t *testing.T) {
			logPath := filepath.Join(s.Dir, "shop.log")
			before := len(readLines(t, logPath))
			stdout, stderr := runPython(t, s.Dir, pythonClient, host, tc.method, tc.url)
			if strings.TrimSpace(stderr) != "" {
				t.Fatalf("python3 reported errors:\n%s", stderr)
			}
			var sent []map[string]string
			if err := json.Unmarshal([]byte(stdout), &sent); err != nil {
				t.Fatalf("python output: %v\n%s", err, stdout)
			}
			var want []map[string]string
			for _, r := range sent {
				if !strings.HasPrefix(r["name"], "shop.noisy") { // filtered by `facility shop:shop.noisy`
					want = append(want, r)
				}
			}
			lines := waitLines(t, logPath, before+len(want))[before:]
			if len(lines) != len(want) {
				t.Fatalf("got %d new lines, want %d:\n%v", len(lines), len(want), lines)
			}
			for i, r := range want {
				assertPythonEntry(t, lines[i], r)
			}
		})
	}
}

// assertPythonEntry checks every key of a Caddy JSON log entry against
// the record Python sent.
func assertPythonEntry(t *testing.T, got map[string]any, r map[string]string) {
	t.Helper()
	levelNo, _ := strconv.Atoi(r["levelno"])
	want := map[string]string{
		"level":       map[int]string{10: "debug", 20: "info", 30: "warn", 40: "error", 50: "dpanic"}[levelNo],
		"ts":          exactNanos(t, r["__created__"]),
		"logger":      "applog.shop." + r["name"],
		"msg":         r["__message__"],
		"app":         "shop",
		"facility":    r["name"],
		"host":        "127.0.0.1",
		"logger_name": r["name"],
		"level_name":  r["levelname"],
		"level_no":    r["levelno"],
	}
	for k, v := range want {
		if fmt.Sprint(got[k]) != v {
			t.Errorf("record %q: %s = %q, want %q", r["__message__"], k, got[k], v)
		}
	}
	// Every other attribute of the record, typed where Python's are.
	wantAttrs := map[string]string{}
	for k, v := range r {
		switch k {
		case "name", "msg", "args", "levelname", "levelno", "created", "msecs", "message", "asctime", "exc_text", "__message__", "__created__":
			continue
		case "exc_info", "stack_info", "taskName":
			if v == "None" {
				continue
			}
		}
		wantAttrs[k] = v
	}
	if r["exc_info"] != "None" {
		wantAttrs["exc_info"] = "ZeroDivisionError: division by zero"
	}
	attrs, _ := got["attrs"].(map[string]any)
	if len(attrs) != len(wantAttrs) {
		t.Errorf("record %q: attrs %v, want keys of %v", r["__message__"], attrs, wantAttrs)
	}
	for k, v := range wantAttrs {
		g, ok := attrs[k]
		if !ok {
			t.Errorf("record %q: attrs.%s missing", r["__message__"], k)
			continue
		}
		switch k {
		case "lineno", "process", "thread":
			if _, isNum := g.(json.Number); !isNum || g.(json.Number).String() != v {
				t.Errorf("record %q: attrs.%s = %#v, want the number %s", r["__message__"], k, g, v)
			}
		case "relativeCreated":
			gf, _ := g.(json.Number).Float64()
			wf, _ := strconv.ParseFloat(v, 64)
			if gf != wf {
				t.Errorf("record %q: attrs.%s = %v, want %v", r["__message__"], k, gf, wf)
			}
		default:
			if g != v {
				t.Errorf("record %q: attrs.%s = %q, want %q", r["__message__"], k, g, v)
			}
		}
	}
	if _, extra := got["truncated"]; extra {
		t.Errorf("record %q: unexpectedly truncated", r["__message__"])
	}
}

// exactNanos converts Python's repr(created) to integer nanoseconds
// without going through a float.
func exactNanos(t *testing.T, created string) string {
	sec, frac, _ := strings.Cut(created, ".")
	frac = (frac + "000000000")[:9]
	s, err1 := strconv.ParseInt(sec, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("bad created %q", created)
	}
	return strconv.FormatInt(s*1e9+f, 10)
}

func TestGoSlogClient(t *testing.T) {
	s := startCaddy(t, ingestCaddyfile)
	start := time.Now()
	cmd := exec.Command("go", "run", "./examples/slogclient", s.URL("/_applog/goapp"))
	cmd.Dir = ".." // the root module, which examples/ belongs to
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("slogclient: %v\n%s", err, out)
	}
	lines := waitLines(t, filepath.Join(s.Dir, "goapp.log"), 4)
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4: %v", len(lines), lines)
	}
	want := []struct{ level, msg, levelName, levelNo, attrs string }{
		{"info", "invoice sent", "INFO", "20", `{"amount":99.5,"customer":{"id":"c-7","tier":"gold"},"invoice":1042}`},
		{"warn", "retrying payment", "WARN", "30", `{"attempt":2}`},
		{"debug", "cache miss", "DEBUG", "10", `{"key":"inv:1042"}`},
		{"error", "ledger out of balance", "ERROR+2", "45", `{"delta":-0.01}`},
	}
	for i, w := range want {
		l := lines[i]
		attrs, _ := json.Marshal(l["attrs"])
		if l["level"] != w.level || l["msg"] != w.msg || l["level_name"] != w.levelName || fmt.Sprint(l["level_no"]) != w.levelNo ||
			l["logger"] != "applog.goapp.billing.worker" || l["logger_name"] != "billing.worker" || l["app"] != "goapp" ||
			l["host"] != "127.0.0.1" || string(attrs) != w.attrs {
			t.Errorf("line %d = %v\nwant %+v", i+1, l, w)
		}
		ns, _ := strconv.ParseInt(string(l["ts"].(json.Number)), 10, 64)
		if ts := time.Unix(0, ns); ts.Before(start.Add(-time.Second)) || ts.After(time.Now()) {
			t.Errorf("line %d: ts %v is not slog's record time", i+1, ts)
		}
	}
}

func TestNDJSONBatchWithCurl(t *testing.T) {
	curl := requireTool(t, "curl")
	s := startCaddy(t, ingestCaddyfile)
	body := `{"time":"2026-11-21T10:00:00.5Z","level":"INFO","msg":"one","logger":"worker","job":7}
{"time":"2026-11-21T10:00:01Z","level":"debug","msg":"two","logger":"shop.noisy"}
{"timestamp":1795255202.25,"levelname":"ERROR","message":"three","name":"worker","nested":{"a":[1,2,{"b":null}]}}
`
	bodyPath := filepath.Join(s.Dir, "batch.ndjson")
	if err := os.WriteFile(bodyPath, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(curl, "-sS", "-w", "\n%{http_code}", "-H", "Content-Type: application/x-ndjson",
		"--data-binary", "@"+bodyPath, s.URL("/_applog/shop")).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if got := string(out); got != `{"accepted":2,"filtered":1,"truncated":0}`+"\n\n200" {
		t.Fatalf("curl got %q", got)
	}
	lines := readLines(t, filepath.Join(s.Dir, "shop.log"))
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2: %v", len(lines), lines)
	}
	nested, _ := json.Marshal(lines[1]["attrs"])
	for i, c := range []struct{ got, want any }{
		{lines[0]["msg"], "one"}, {lines[0]["ts"], json.Number("1795255200500000000")},
		{lines[0]["logger"], "applog.shop.worker"}, {fmt.Sprint(lines[0]["attrs"]), "map[job:7]"},
		{lines[1]["msg"], "three"}, {lines[1]["level"], "error"}, {lines[1]["ts"], json.Number("1795255202250000000")},
		{string(nested), `{"nested":{"a":[1,2,{"b":null}]}}`},
	} {
		if c.got != c.want {
			t.Errorf("check %d: got %v, want %v", i, c.got, c.want)
		}
	}
}

func TestBadInput(t *testing.T) {
	s := startCaddy(t, ingestCaddyfile)
	logPath := filepath.Join(s.Dir, "shop.log")
	for _, tc := range []struct {
		name, method, path, ctype, body string
		status                          int
		reason                          string
	}{
		{"batch with a bad line", "POST", "/_applog/shop", "application/x-ndjson", "{\"msg\":\"ok\"}\n{\"msg\":\"broken\n", 400, "malformed application/x-ndjson body: line 2: unterminated string"},
		{"not JSON", "POST", "/_applog/shop", "application/json", "hello", 400, "line 1: expected a JSON object or array"},
		{"unknown type", "POST", "/_applog/shop", "application/xml", "<x/>", 415, `unsupported Content-Type "application/xml"`},
		{"no type", "POST", "/_applog/shop", "", "x", 415, "missing Content-Type"},
		{"too large", "POST", "/_applog/small", "text/plain", strings.Repeat("x", 2000), 413, "body larger than max_body_size (1.0 KiB)"},
		{"unknown app", "POST", "/_any?app=nobody", "text/plain", "hi", 403, `unknown app "nobody": configure ` + "`facility nobody`"},
		{"invalid app", "POST", "/_any?app=a/b", "text/plain", "hi", 400, `invalid app name "a/b"`},
		{"no app", "POST", "/_any", "text/plain", "hi", 400, "names no app"},
		{"wrong app for endpoint", "POST", "/_applog/shop", "application/json", `{"msg":"x","app":"goapp"}`, 403, `record 1 names app "goapp", but this endpoint accepts only app "shop"`},
		{"GET without record", "GET", "/_applog/shop", "", "", 400, "GET needs a log record in the query string"},
		{"GET with a bad record", "GET", "/_applog/shop?msg=%zz", "", "", 400, "malformed query string: form field 1: value of \"msg\": invalid escape \"%zz\""},
		{"method", "DELETE", "/_applog/shop", "", "", 405, "method DELETE not allowed"},
		{"bad form", "POST", "/_applog/shop", "application/x-www-form-urlencoded", "msg=%zz", 400, "malformed application/x-www-form-urlencoded body: form field 1: value of \"msg\": invalid escape \"%zz\""},
		{"form not a record", "POST", "/_applog/shop", "application/x-www-form-urlencoded", "foo=bar", 400, "not a Python log record: no msg, message or name field"},
		{"bad level", "POST", "/_applog/shop?level=loud", "text/plain", "hi", 400, `unknown level "loud"`},
		{"deep nesting", "POST", "/_applog/shop", "application/json", `{"msg":"x","a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`, 400, "nesting deeper than 64"},
		{"bad signature header", "POST", "/_applog/billing", "text/plain", "hi", 401, "malformed X-Applog-Signature header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.URL(tc.path), strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.name == "bad signature header" {
				req.Header.Set("X-Applog-Signature", "t=abc")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			body := string(b)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.reason) || strings.Count(body, "\n") != 1 {
				t.Fatalf("got %d %q, want %d with one line containing %q", resp.StatusCode, body, tc.status, tc.reason)
			}
		})
	}
	if lines := readLines(t, logPath); len(lines) != 0 {
		t.Fatalf("rejected requests emitted records: %v", lines)
	}
	// Rejections are logged with the peer's address.
	if !strings.Contains(s.Output(), `"peer":"127.0.0.1"`) || !strings.Contains(s.Output(), "rejected log records") {
		t.Fatalf("rejections not logged with the peer:\n%s", s.Output())
	}
	// And the server keeps serving good requests.
	if st, body := post(t, s.URL("/_applog/shop"), "text/plain", []byte("still fine"), nil); st != 200 {
		t.Fatalf("after bad input: %d %s", st, body)
	}
}

// signedClient uses examples/python/signed_handler.py, exactly as shipped.
const signedClient = `
import logging, sys
sys.path.insert(0, sys.argv[1])
from signed_handler import SignedHTTPHandler
log = logging.getLogger("billing.invoices")
log.propagate = False
log.setLevel(logging.INFO)
log.addHandler(SignedHTTPHandler(sys.argv[2], "/_applog/billing", sys.argv[3]))
try:
    {}["missing"]
except KeyError:
    log.exception("invoice %d failed", 1042)
`

func sign(secret, ts string, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts + "."))
	h.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(h.Sum(nil))
}

func TestSignatures(t *testing.T) {
	s := startCaddy(t, ingestCaddyfile)
	examples, _ := filepath.Abs("../examples/python")
	host := fmt.Sprintf("127.0.0.1:%d", s.HTTPPort)
	logPath := filepath.Join(s.Dir, "billing.log")

	// The shipped Python handler, right secret: lands, traceback included.
	_, stderr := runPython(t, s.Dir, signedClient, examples, host, "s3cret")
	if strings.TrimSpace(stderr) != "" {
		t.Fatalf("signed handler reported: %s", stderr)
	}
	lines := readLines(t, logPath)
	if len(lines) != 1 || lines[0]["msg"] != "invoice 1042 failed" || lines[0]["level"] != "error" {
		t.Fatalf("signed record: %v", lines)
	}
	attrs, _ := lines[0]["attrs"].(map[string]any)
	if exc, _ := attrs["exc_text"].(string); !strings.HasPrefix(exc, "Traceback (most recent call last):") || !strings.HasSuffix(exc, "KeyError: 'missing'") {
		t.Fatalf("exc_text = %q", attrs["exc_text"])
	}

	// Wrong secret: refused, and the handler says so on stderr.
	_, stderr = runPython(t, s.Dir, signedClient, examples, host, "wrong")
	if !strings.Contains(stderr, "caddy-applog refused the record: 403 bad signature for facility billing") {
		t.Fatalf("wrong secret: stderr %q", stderr)
	}

	url := s.URL("/_applog/billing")
	body := []byte(`{"msg":"charged","logger":"billing.cards"}`)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	stale := strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10)
	for _, tc := range []struct {
		name   string
		header string
		status int
		reason string
	}{
		{"missing", "", 401, "facility billing requires a signed request (X-Applog-Signature header)"},
		{"wrong secret", sign("nope", now, body), 403, "bad signature for facility billing"},
		{"stale", sign("s3cret", stale, body), 403, "outside the 5m0s replay window"},
		{"tampered timestamp", strings.Replace(sign("s3cret", now, body), "t="+now, "t="+stale, 1), 403, "outside the 5m0s replay window"},
		{"valid", sign("s3cret", now, body), 200, `{"accepted":1`},
		{"replayed", sign("s3cret", now, body), 409, "replayed request"},
	} {
		h := http.Header{}
		if tc.header != "" {
			h.Set("X-Applog-Signature", tc.header)
		}
		if st, resp := post(t, url, "application/json", body, h); st != tc.status || !strings.Contains(resp, tc.reason) {
			t.Fatalf("%s: got %d %q, want %d containing %q", tc.name, st, resp, tc.status, tc.reason)
		}
	}

	// A reload through the admin API does not forget used signatures.
	s.reload(ingestCaddyfile)
	h := http.Header{"X-Applog-Signature": {sign("s3cret", now, body)}}
	if st, resp := post(t, url, "application/json", body, h); st != 409 || !strings.Contains(resp, "replayed request") {
		t.Fatalf("replay after reload: got %d %q", st, resp)
	}
	if lines := readLines(t, logPath); len(lines) != 2 {
		t.Fatalf("billing.log has %d lines, want 2 (python + valid): %v", len(lines), lines)
	}
}

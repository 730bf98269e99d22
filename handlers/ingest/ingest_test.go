package ingest_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-applog/caddy-applog"
	"github.com/caddy-applog/caddy-applog/handlers/ingest"
	"github.com/caddy-applog/caddy-applog/internal/testtool"
	"github.com/caddy-applog/caddy-applog/module/status"
)

// failIfSkipped turns caddytest's silent skips (under -short, or when
// the server cannot start) into failures under CI.
func failIfSkipped(t *testing.T) {
	t.Cleanup(func() {
		if t.Skipped() && testtool.CI() {
			t.Errorf("test was skipped under CI=true: caddytest could not start the server")
		}
	})
}

// startInProcess starts Caddy in the test process, with app shop (level
// info, its entries discarded) and the site routes given.
func startInProcess(t *testing.T, routes string) *caddytest.Tester {
	failIfSkipped(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(`
	{
		admin localhost:2999
		http_port 9080
		applog {
			facility shop {
				level info
			}
		}
		log shop {
			include applog.shop
			output discard
		}
	}
	http://localhost:9080 {
	`+routes+`
	}`, "caddyfile")
	return tester
}

func TestInProcess(t *testing.T) {
	tester := startInProcess(t, `
		log_ingest /ingest shop
		log_ingest /any`)

	for _, tc := range []struct {
		path, ctype, body string
		status            int
		resp              string
		sig               string // X-Applog-Signature, if any
	}{
		{"/ingest", "application/x-ndjson", "{\"msg\":\"a\",\"level\":\"debug\"}\n{\"msg\":\"b\"}", 200, `{"accepted":1,"filtered":1,"truncated":0}`, ""},
		{"/ingest", "application/x-www-form-urlencoded", "name=shop.views&msg=hi+%25s&args=%28%27there%27%2C%29&levelname=INFO&levelno=20&created=1763726400.5", 200, `{"accepted":1,"filtered":0,"truncated":0}`, ""},
		{"/any?app=shop", "text/plain", "one\ntwo\n", 200, `{"accepted":2,"filtered":0,"truncated":0}`, ""},
		{"/any?app=other", "text/plain", "x", 403, `unknown app "other"`, ""},
		{"/ingest", "application/json", `{"msg":`, 400, "line 1: unexpected end of body", ""},
		{"/ingest?app=other", "application/json", `{"msg":"x"}`, 403, `the app query parameter names app "other", but this endpoint accepts only app "shop"`, ""},
		{"/ingest?app=shop", "application/json", `{"msg":"x"}`, 200, `{"accepted":1`, ""},
		{"/ingest", "application/json", `{"msg":"x","app":"other"}`, 403, `record 1 names app "other", but this endpoint accepts only app "shop"`, ""},
		{"/ingest", "application/x-www-form-urlencoded", ` {"msg":"x"}`, 415, "the body looks like JSON (it starts with '{')", ""},
		{"/ingest", "application/x-www-form-urlencoded", `[{"msg":"x"}]`, 415, "Content-Type: application/json", ""},
		{"/ingest", "application/x-www-form-urlencoded", "msg=x&levelname=loud", 400, `unknown levelname "loud" and no levelno`, ""},
		{"/ingest", "application/x-www-form-urlencoded", "msg=x&levelname=loud&levelno=25", 200, `{"accepted":1`, ""},
		{"/ingest", "application/json", `{"msg":"x","level":"loud"}`, 400, `line 1: unknown level "loud"`, ""},
		{"/ingest", "application/x-ndjson", "{\"msg\":\"a\"}\n\n{\"msg\":\"b\"\n{\"msg\":\"c\"}\n", 400, "line 3: unexpected end of line", ""},
		{"/any?app=shop", "application/json", `{"msg":"x"}`, 400, "the app query parameter is not covered by the X-Applog-Signature signature", "t=1,v1=00"},
		{"/ingest?facility=x", "application/json", `{"msg":"x"}`, 400, "the facility query parameter is not covered", "t=1,v1=00"},
		{"/ingest?level=error", "text/plain", "x", 400, "the level query parameter is not covered", "t=1,v1=00"},
	} {
		req, _ := http.NewRequest(http.MethodPost, "http://localhost:9080"+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ctype)
		if tc.sig != "" {
			req.Header.Set("X-Applog-Signature", tc.sig)
		}
		resp := tester.AssertResponseCode(req, tc.status)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), tc.resp) {
			t.Errorf("POST %s: body %q, want it to contain %q", tc.path, body, tc.resp)
		}
	}
}

// newBenchHandler loads a config whose only log takes applog's records
// through Caddy's JSON encoder into Caddy's file writer on /dev/null (not
// the discard writer: Caddy drops logs that use it before encoding), and
// returns a provisioned log_ingest handler of that config.
func newBenchHandler(b testing.TB) *ingest.Ingest {
	cfg := `{
		"admin": {"disabled": true},
		"logging": {"logs": {
			"default": {"exclude": ["applog"]},
			"bench": {"include": ["applog"], "writer": {"output": "file", "filename": "/dev/null", "roll": false}, "encoder": {"format": "json"}}
		}},
		"apps": {"applog": {"facilities": {"bench": {}}}}
	}`
	if err := caddy.Load([]byte(cfg), true); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = caddy.Stop() })
	h := &ingest.Ingest{App: "bench"}
	if err := h.Provision(caddy.ActiveContext()); err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkIngestNDJSON posts 100-record NDJSON batches through the
// handler, the applog app and Caddy's JSON encoder, with the status
// page's ring of recent records off and on, in the same run.
func BenchmarkIngestNDJSON(b *testing.B) {
	h := newBenchHandler(b)
	const perBatch = 100
	var body bytes.Buffer
	for i := range perBatch {
		fmt.Fprintf(&body, `{"time":"2026-11-21T10:00:00.%09dZ","level":"INFO","msg":"request served","logger":"web.requests","path":"/api/v1/items/%d","status":200,"duration":0.0123,"user":{"id":42,"roles":["a","b"]}}`+"\n", i, i)
	}
	payload := body.Bytes()
	serve := func(b *testing.B) {
		req := httptest.NewRequest(http.MethodPost, "/_applog", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/x-ndjson")
		rec := httptest.NewRecorder()
		if err := h.ServeHTTP(rec, req, nil); err != nil || rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	for _, ring := range []int{0, status.DefaultRecent} {
		name := "ring=off"
		if ring > 0 {
			name = "ring=on"
		}
		b.Run(name, func(b *testing.B) {
			status.SetRecentSize(ring)
			defer status.SetRecentSize(0)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				serve(b)
			}
			b.ReportMetric(float64(b.N*perBatch)/time.Since(start).Seconds(), "records/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perBatch), "ns/record")
			b.ReportMetric(testing.AllocsPerRun(10, func() { serve(b) })/perBatch, "allocs/record")
		})
	}
}

// BenchmarkIngestForm posts the single record Python's HTTPHandler sends
// for logging.getLogger("shop.views").info("user %s logged in from %s
// seq=%d", "alice", "10.0.0.7", 7) under Python 3.12 (urlencode of the
// record's __dict__), through the handler, the app and Caddy's JSON
// encoder into Caddy's file writer on /dev/null: what log_ingest adds to
// a request, beside Caddy's own HTTP work.
func BenchmarkIngestForm(b *testing.B) {
	h := newBenchHandler(b)
	payload := []byte("name=shop.views&msg=user+%25s+logged+in+from+%25s+seq%3D%25d&args=%28%27alice%27%2C+%2710.0.0.7%27%2C+7%29" +
		"&levelname=INFO&levelno=20&pathname=%2Fsrv%2Fshop%2Fviews.py&filename=views.py&module=views&exc_info=None" +
		"&exc_text=None&stack_info=None&lineno=42&funcName=login&created=1796166959.4301264&msecs=430.0" +
		"&relativeCreated=5012.345678329468&thread=140234234234112&threadName=MainThread&processName=MainProcess" +
		"&process=4242&taskName=None")
	w := &statusWriter{header: http.Header{}}
	serve := func(b *testing.B) {
		req := httptest.NewRequest(http.MethodPost, "/_applog", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		clear(w.header)
		if err := h.ServeHTTP(w, req, nil); err != nil || w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
	// The request is the benchmark's, not the handler's: its
	// allocations are counted apart and taken off.
	baseAllocs, baseBytes := allocsPerRun(100, func() {
		req := httptest.NewRequest(http.MethodPost, "/_applog", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	})
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		serve(b)
	}
	allocs, size := allocsPerRun(100, func() { serve(b) })
	b.ReportMetric(allocs-baseAllocs, "handler-allocs/op")
	b.ReportMetric(size-baseBytes, "handler-B/op")
}

// allocsPerRun is testing.AllocsPerRun with the bytes allocated too,
// averaged over runs calls of f after one to warm up.
func allocsPerRun(runs int, f func()) (allocs, size float64) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(runs),
		float64(after.TotalAlloc-before.TotalAlloc) / float64(runs)
}

// statusWriter is a ResponseWriter that keeps only the status.
type statusWriter struct {
	header http.Header
	status int
}

func (w *statusWriter) Header() http.Header         { return w.header }
func (w *statusWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *statusWriter) WriteHeader(status int)      { w.status = status }

// TestBodyLimitWithoutLength: a body of unknown length (chunked) beyond
// max_body_size is refused with 413 once read past the limit; one of
// exactly max_body_size bytes is accepted.
func TestBodyLimitWithoutLength(t *testing.T) {
	h := newBenchHandler(t)
	h.MaxBodySize = 64
	for _, tc := range []struct {
		size   int
		status int
	}{{64, http.StatusOK}, {65, http.StatusRequestEntityTooLarge}, {10000, http.StatusRequestEntityTooLarge}} {
		msg := strings.Repeat("x", tc.size-len(`{"msg":""}`))
		req := httptest.NewRequest(http.MethodPost, "/_applog", io.MultiReader(strings.NewReader(`{"msg":"`+msg+`"}`)))
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		if err := h.ServeHTTP(rec, req, nil); err != nil {
			t.Fatal(err)
		}
		if rec.Code != tc.status {
			t.Errorf("%d bytes: status %d (%s), want %d", tc.size, rec.Code, rec.Body, tc.status)
		}
	}
}

// TestFormErrorLines: a form that cannot be read, or is no log record,
// gets one line saying so once, naming the part of the request at fault.
func TestFormErrorLines(t *testing.T) {
	h := newBenchHandler(t)
	for _, tc := range []struct{ method, target, body, want string }{
		{"POST", "/_applog", "msg=%zz", `malformed application/x-www-form-urlencoded body: form field 1: value of "msg": invalid escape "%zz"`},
		{"POST", "/_applog", "msg=ok&a%ZZ=1", `malformed application/x-www-form-urlencoded body: form field 2: key "a%ZZ": invalid escape "%ZZ"`},
		{"GET", "/_applog?msg=%zz", "", `malformed query string: form field 1: value of "msg": invalid escape "%zz"`},
		{"POST", "/_applog", "foo=bar", "not a Python log record: no msg, message or name field"},
		{"GET", "/_applog?foo=bar", "", "not a Python log record: no msg, message or name field"},
	} {
		req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
		if tc.method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		rec := httptest.NewRecorder()
		if err := h.ServeHTTP(rec, req, nil); err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusBadRequest || rec.Body.String() != tc.want+"\n" {
			t.Errorf("%s %s %q: %d %q, want 400 %q", tc.method, tc.target, tc.body, rec.Code, rec.Body, tc.want)
		}
	}
}

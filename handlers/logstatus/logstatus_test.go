package logstatus

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/module/applog"
	"github.com/caddy-applog/caddy-applog/module/status"
)

// The applog app is what Provision asks to keep recent records.
var _ RecentKeeper = (*applog.App)(nil)

func TestFilter(t *testing.T) {
	entries := []status.Entry{
		{Seq: 1, App: "shop", Facility: "web", LevelNo: 20, Host: "10.0.0.1", Message: "GET /cart", Logger: "web"},
		{Seq: 2, App: "shop", Facility: "web.requests", LevelNo: 40, Host: "10.0.0.2", Message: "timeout", Logger: "web.requests"},
		{Seq: 3, App: "shop", Facility: "webhooks", LevelNo: 30, Message: "retry"},
		{Seq: 4, App: "billing", LevelNo: 50, Message: "Ledger DOWN", Logger: "ledger"},
	}
	for query, want := range map[string]string{
		"":                                 "1,2,3,4",
		"app=shop":                         "1,2,3",
		"facility=web":                     "1,2", // itself and sub-modules, not webhooks
		"level=warning":                    "2,3,4",
		"level=ERROR":                      "2,4",
		"host=10.0.0.2":                    "2",
		"q=down":                           "4",
		"q=LEDGER":                         "4", // logger names match too
		"limit=2":                          "3,4",
		"app=shop&limit=1":                 "3",
		"app=none":                         "",
		"facility=web.requests&level=info": "2",
	} {
		q, _ := url.ParseQuery(query)
		f, err := parseFilter(q)
		if err != nil {
			t.Fatalf("%q: %v", query, err)
		}
		var got []string
		for _, e := range f.apply(append([]status.Entry(nil), entries...)) {
			got = append(got, string(rune('0'+e.Seq)))
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%q: got %v, want %s", query, got, want)
		}
	}
	for query, want := range map[string]string{
		"level=loud": `unknown level "loud"`,
		"after=x":    "after: want a sequence number",
		"limit=-1":   "limit: want a non-negative number",
	} {
		q, _ := url.ParseQuery(query)
		if _, err := parseFilter(q); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", query, err, want)
		}
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	var h LogStatus
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("log_status {\n css /x.css\n}")); err != nil || h.CSS != "/x.css" {
		t.Fatalf("%v %q", err, h.CSS)
	}
	for input, want := range map[string]string{
		"log_status extra":             "wrong argument count",
		"log_status {\n css\n}":        "wrong argument count",
		"log_status {\n colour red\n}": "unrecognized log_status option 'colour'",
	} {
		var h LogStatus
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", input, err, want)
		}
	}
}

// TestHeaders: every response says nosniff, errors included, and the
// page and its assets forbid framing.
func TestHeaders(t *testing.T) {
	h := &LogStatus{shutdown: make(chan struct{})}
	for _, tc := range []struct {
		method, target string
		page           bool
	}{
		{"GET", "/status", true},
		{"GET", "/status?asset=status.js", true},
		{"GET", "/status?asset=status.css", true},
		{"GET", "/status?asset=nope", false},
		{"GET", "/status?format=json", false},
		{"GET", "/status?format=sse", false},
		{"GET", "/status?level=loud", false},
		{"POST", "/status", false},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		r := httptest.NewRequestWithContext(ctx, tc.method, tc.target, nil)
		w := httptest.NewRecorder()
		_ = h.ServeHTTP(w, r, nil)
		cancel()
		if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s: X-Content-Type-Options %q", tc.method, tc.target, got)
		}
		if csp := w.Header().Get("Content-Security-Policy"); tc.page && !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s %s: Content-Security-Policy %q", tc.method, tc.target, csp)
		}
	}
}

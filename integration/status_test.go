package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// statusCaddyfile serves the status page behind basic_auth, next to
// log_ingest. The password hash is filled in by the test.
const statusCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	metrics
	applog {
		recent_records 50
		facility shop
		facility other
	}
	log apps {
		include applog
		output rotate {{.Dir}}/apps.log {
			max_size 600B
			compress none
		}
		level DEBUG
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	handle /_applog/shop {
		log_ingest shop
	}
	handle /_applog/any {
		log_ingest
	}
	handle /status {
		basic_auth {
			admin HASH
		}
		log_status {
			css {{.Dir}}/mine.css
		}
	}
}
`

// statusServer starts Caddy with the status page; user admin, password
// "s3cret".
func statusServer(t *testing.T) (*server, string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(statusCaddyfile, "HASH", string(hash), 1)
	// The CSS file must exist before Caddy validates the config.
	s := startCaddyWith(t, cfg, func(d string) {
		if err := os.WriteFile(filepath.Join(d, "mine.css"), []byte("header h1 { color: rgb(1, 2, 3); }\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	return s, cfg
}

func getAuth(t *testing.T, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth("admin", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type statusDoc struct {
	Stats struct {
		Writers []struct {
			Kind, Name                        string
			Entries, Bytes, Errors, Rotations int64
		}
		Totals     struct{ Accepted, Rejected, Filtered int64 }
		Facilities []struct {
			Name     string
			Accepted int64
		}
	}
	Records []struct {
		Seq                                  uint64
		Level, LevelName, App, Host, Message string
	}
}

func getStatus(t *testing.T, s *server, query string) statusDoc {
	t.Helper()
	code, body := getAuth(t, s.URL("/status?format=json&"+query))
	if code != 200 {
		t.Fatalf("status json: %d %s", code, body)
	}
	var doc statusDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("status json: %v: %s", err, body)
	}
	return doc
}

func TestStatusPageAndMetrics(t *testing.T) {
	s, cfg := statusServer(t)

	// Not exposed without credentials.
	resp, err := http.Get(s.URL("/status"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status page without auth: %d", resp.StatusCode)
	}
	if code, body := getAuth(t, s.URL("/status")); code != 200 || !strings.Contains(body, "caddy-applog") || !strings.Contains(body, `href="?asset=user.css"`) {
		t.Fatalf("status page: %d %.200s", code, body)
	}
	if code, body := getAuth(t, s.URL("/status?asset=user.css")); code != 200 || !strings.Contains(body, "rgb(1, 2, 3)") {
		t.Fatalf("user css: %d %q", code, body)
	}

	// Open the event stream before posting: records must arrive live.
	events := make(chan string, 100)
	req, _ := http.NewRequest(http.MethodGet, s.URL("/status?format=sse&app=shop"), nil)
	req.SetBasicAuth("admin", "s3cret")
	sse, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Body.Close()
	if ct := sse.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("sse content type %q", ct)
	}
	go func() {
		sc := bufio.NewScanner(sse.Body)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data: {\"seq\"") {
				events <- line
			}
		}
		close(events)
	}()

	batch := `{"msg":"first","level":"debug"}
{"msg":"second","level":"info"}
{"msg":"third","level":"error","logger":"cart"}
`
	if code, body := post(t, s.URL("/_applog/shop"), "application/x-ndjson", []byte(batch), nil); code != 200 {
		t.Fatalf("post: %d %s", code, body)
	}
	if code, _ := post(t, s.URL("/_applog/any?app=nobody"), "text/plain", []byte("a\nb"), nil); code != 403 {
		t.Fatalf("unknown app: %d", code)
	}
	if code, _ := post(t, s.URL("/_applog/shop"), "application/json", []byte("{"), nil); code != 400 {
		t.Fatalf("bad json: %d", code)
	}
	if code, _ := post(t, s.URL("/_applog/any?app=other"), "text/plain", []byte("elsewhere"), nil); code != 200 {
		t.Fatalf("other app: %d", code)
	}

	// The stream delivered the shop records live, and not the other app's.
	var got []string
	deadline := time.After(10 * time.Second)
	for len(got) < 3 {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("event stream ended; got %v", got)
			}
			got = append(got, ev)
		case <-deadline:
			t.Fatalf("only %d live events within 10s: %v", len(got), got)
		}
	}
	for i, want := range []string{`"message":"first"`, `"message":"second"`, `"message":"third"`} {
		if !strings.Contains(got[i], want) || !strings.Contains(got[i], `"app":"shop"`) {
			t.Errorf("event %d = %s, want %s", i, got[i], want)
		}
	}

	// JSON: records and counters, and the filters.
	doc := getStatus(t, s, "")
	if len(doc.Records) != 4 || doc.Records[2].Message != "third" || doc.Records[2].Level != "error" || doc.Records[3].App != "other" || doc.Records[0].Host != "127.0.0.1" {
		t.Fatalf("records %+v", doc.Records)
	}
	if doc.Stats.Totals.Accepted != 4 || doc.Stats.Totals.Rejected != 3 {
		t.Fatalf("totals %+v (want 4 accepted; 2 lines of an unknown app + 1 bad body rejected)", doc.Stats.Totals)
	}
	if d := getStatus(t, s, "level=error"); len(d.Records) != 1 || d.Records[0].Message != "third" {
		t.Fatalf("level filter: %+v", d.Records)
	}
	if d := getStatus(t, s, "q=ELSE"); len(d.Records) != 1 || d.Records[0].App != "other" {
		t.Fatalf("text filter: %+v", d.Records)
	}
	if code, body := getAuth(t, s.URL("/status?format=json&level=loud")); code != 400 || !strings.Contains(body, `unknown level "loud"`) {
		t.Fatalf("bad filter: %d %s", code, body)
	}

	// The rotate writer's counters: every accepted record written, and
	// rotations (600-byte files hold about two entries).
	var rotate bool
	for _, w := range doc.Stats.Writers {
		if w.Kind == "rotate" && w.Name == filepath.Join(s.Dir, "apps.log") {
			rotate = true
			if w.Entries != 4 || w.Bytes < 400 || w.Errors != 0 || w.Rotations < 1 {
				t.Errorf("rotate writer counters %+v", w)
			}
		}
	}
	if !rotate {
		t.Errorf("no rotate writer in the stats: %+v", doc.Stats.Writers)
	}

	// Prometheus metrics through Caddy's admin /metrics.
	metrics := scrape(t, s)
	for _, want := range []string{
		`caddy_applog_records_total{facility="shop",outcome="accepted"} 3`,
		`caddy_applog_records_total{facility="other",outcome="accepted"} 1`,
		`caddy_applog_source_records_total{outcome="rejected",source="log_ingest"} 3`,
		`caddy_applog_source_records_total{outcome="accepted",source="log_ingest"} 4`,
		fmt.Sprintf(`caddy_applog_writer_entries_total{name=%q,writer="rotate"} 4`, filepath.Join(s.Dir, "apps.log")),
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(metrics, "caddy_applog_"))
		}
	}

	// A reload keeps the records on the page and the counters counting.
	s.reload(cfg)
	if code, _ := post(t, s.URL("/_applog/shop"), "text/plain", []byte("after reload"), nil); code != 200 {
		t.Fatal("post after reload")
	}
	doc = getStatus(t, s, "")
	if len(doc.Records) != 5 || doc.Records[4].Message != "after reload" || doc.Stats.Totals.Accepted != 5 {
		t.Fatalf("after reload: %d records, totals %+v", len(doc.Records), doc.Stats.Totals)
	}
	if !strings.Contains(scrape(t, s), `caddy_applog_records_total{facility="shop",outcome="accepted"} 4`+"\n") {
		t.Errorf("counter did not keep counting across the reload")
	}
}

func scrape(t *testing.T, s *server) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.AdminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, substr string) string {
	return strings.Join(regexp.MustCompile(`(?m)^.*`+regexp.QuoteMeta(substr)+`.*$`).FindAllString(s, -1), "\n")
}

package logstatus

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/module/status"
)

func TestAppendLine(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 30, 45, 123e6, time.Local)
	for _, tc := range []struct {
		name  string
		e     status.Entry
		color bool
		want  string
	}{
		{"plain", status.Entry{Time: at, Level: "warn", LevelName: "WARNING", App: "shop", Facility: "web.requests", Logger: "web.requests", Host: "10.0.0.1", Message: "slow", Source: "log_ingest"}, false,
			"2026-05-01 12:30:45.123 WARNING  shop:web.requests 10.0.0.1 slow\n"},
		{"colour on a terminal", status.Entry{Time: at, Level: "error", LevelName: "ERROR", App: "shop", Message: "down"}, true,
			"2026-05-01 12:30:45.123 \x1b[31mERROR\x1b[0m    shop - down\n"},
		{"zap's level when the source sent none", status.Entry{Time: at, Level: "info", App: "a", Message: "m"}, false,
			"2026-05-01 12:30:45.123 INFO     a - m\n"},
		{"logger and door when they add something", status.Entry{Time: at, Level: "info", LevelName: "notice", App: "mail", Facility: "smtp", Logger: "postfix/smtpd", Host: "h", Message: "m", Source: "syslog/udp/127.0.0.1:5514"}, false,
			"2026-05-01 12:30:45.123 NOTICE   mail:smtp h m  logger=postfix/smtpd  via=syslog/udp/127.0.0.1:5514\n"},
		{"control characters escaped in every field", status.Entry{Time: at, Level: "info", LevelName: "INFO\x1b[2J", App: "a\x07", Host: "h\r", Message: "line1\nline2\ttab \x1b[31mred\u009b", Logger: "l\x00"}, false,
			"2026-05-01 12:30:45.123 INFO\\x1b[2J a\\x07 h\\r line1\\nline2\\ttab \\x1b[31mred\\u009b  logger=l\\x00\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(appendLine(nil, &tc.e, tc.color)); got != tc.want {
				t.Fatalf("\ngot  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestSSEEvent(t *testing.T) {
	var ev sseEvent
	var got []string
	for _, line := range strings.Split(": comment\nid: 7\nevent: record\ndata: {\"a\":\ndata: 1}\n\nevent: stats\ndata:{}\n\n", "\n") {
		if ev.add([]byte(line)) {
			got = append(got, fmt.Sprintf("%s|%s|%s", ev.id, ev.name, ev.data))
			ev = sseEvent{}
		}
	}
	if want := "7|record|{\"a\":\n1}" + "," + "|stats|{}"; strings.Join(got, ",") != want {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// lockedBuffer collects what the tailer prints while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls f for up to 5 seconds.
func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTailer follows the admin stream as served (filters on the server,
// the ring of recent records), through the end of a stream as a config
// reload ends it: nothing is printed twice, nothing is lost, and it says
// so on stderr.
func TestTailer(t *testing.T) {
	status.SetFollowSize(50)
	defer status.SetFollowSize(0)
	status.SetRecentSize(0)
	var (
		mu   sync.Mutex
		done = make(chan struct{})
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/applog/records" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		d := done
		mu.Unlock()
		_ = serveRecords(w, r, d)
	}))
	defer srv.Close()

	tl, err := newTailer(strings.TrimPrefix(srv.URL, "http://"), url.Values{"app": {"shop"}, "level": {"warning"}})
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut lockedBuffer
	tl.out, tl.errOut = &out, &errOut
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	// Records from before the tail starts are not shown.
	status.RecordBatch([]status.Entry{{App: "shop", Level: "error", LevelNo: 40, Message: "old"}})
	go func() { ended <- tl.run(ctx) }()
	defer func() {
		cancel()
		if err := <-ended; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	waitFor(t, "the stream", func() bool { return status.RecentSize() > 0 })
	time.Sleep(2 * pollEvery) // the stream has taken its starting point

	send := func(msgs ...string) {
		var batch []status.Entry
		for _, m := range msgs {
			app, level, no := "shop", "warn", 30
			switch {
			case strings.HasPrefix(m, "other"):
				app = "other"
			case strings.HasPrefix(m, "info"):
				level, no = "info", 20
			}
			batch = append(batch, status.Entry{App: app, Level: level, LevelNo: no, LevelName: strings.ToUpper(level), Message: m})
		}
		status.RecordBatch(batch)
	}
	send("one", "other app", "info below", "two")
	waitFor(t, "two lines", func() bool { return strings.Count(out.String(), "\n") >= 2 })

	// A reload ends the stream; what arrives meanwhile is not lost.
	mu.Lock()
	close(done)
	done = make(chan struct{})
	mu.Unlock()
	send("three")
	waitFor(t, "the reconnection", func() bool { return strings.Contains(errOut.String(), "following again") })
	send("four")
	waitFor(t, "four lines", func() bool { return strings.Count(out.String(), "\n") >= 4 })
	time.Sleep(3 * pollEvery) // and no more come

	var msgs []string
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		f := strings.Fields(line)
		msgs = append(msgs, f[len(f)-1])
	}
	if got := strings.Join(msgs, ","); got != "one,two,three,four" {
		t.Fatalf("printed %q\n%s", got, out.String())
	}
	if e := errOut.String(); !strings.Contains(e, "ended the stream; reconnecting") || strings.Count(e, "\n") != 2 {
		t.Fatalf("stderr %q", e)
	}
}

// TestTailerUnreachable: the first failure to reach Caddy is an error
// that says where it looked.
func TestTailerUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	tl, err := newTailer(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	tl.out, tl.errOut = new(lockedBuffer), new(lockedBuffer)
	err = tl.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot reach Caddy's admin API at "+addr) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error %v", err)
	}
}

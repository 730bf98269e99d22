package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/oneline/onelinetest"
	"github.com/chromedp/chromedp"
)

// encoderAttacks are the attacks on the encoders and the status page.
var encoderAttacks = []attack{
	{
		Name:    "record_forges_lines_through_text_encoders",
		Outcome: "records whose message and logger name hold \\n<14>..., \\r, NUL, ESC, C1 and U+2028, sent by python3's HTTPHandler, are one line each in `syslog { wrap console }`, `access { fallback console }` and on the wire of `output syslog { framing lf }` with `format console`, with no raw control character",
		Run:     attackForgedRecordLines,
	},
	{
		Name:    "request_forges_access_lines",
		Outcome: "requests over a raw socket whose path (%0A, %1B decoded by %U), User-Agent and Referer hold tabs, C1 bytes (0x9b CSI), U+2028 and bad UTF-8 are one line each in the gunicorn and combined formats, no raw control character; requests with ESC, CR or NUL in a header are refused by Go with 400 and logged nowhere",
		Run:     attackForgedAccessLines,
	},
	{
		Name:    "status_responses_lack_nosniff",
		Outcome: "every response of log_status (page, assets, JSON, event stream, 400, 404, 405) has X-Content-Type-Options: nosniff, and the page and its assets a CSP with frame-ancestors 'none'",
		Run:     attackStatusHeaders,
	},
	{
		Name:    "huge_logger_name_widens_status_page",
		Outcome: "a record with a 200 KB logger name and a 200 KB message without spaces keeps the page in headless Chromium within 2x the viewport's width; the logger is clipped with an ellipsis and its markup shown as text",
		Run:     attackStatusPageWidth,
	},
}

const forgeryCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		facility shop
	}
	log syslog_console {
		include applog
		output file {{.Dir}}/syslog-console.log
		format syslog {
			wrap console
		}
	}
	log access_fallback {
		include applog
		output file {{.Dir}}/access-fallback.log
		format access {
			fallback console
		}
	}
	log syslog_wire {
		include applog
		output syslog tcp/127.0.0.1:WIRE {
			framing lf
		}
		format console
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	handle /_applog/shop {
		log_ingest shop
	}
}
`

// forgeryClient logs forgeryMessages through logging.handlers.HTTPHandler,
// the second under a logger name that tries a line of its own.
const forgeryClient = `import logging, logging.handlers, sys
host, url = sys.argv[1], sys.argv[2]
msgs = [
    "MARK-1 ok\n<14>1 2026-12-04T20:00:00Z db1 bank 7 - - forged line\n<11>Dec  4 20:00:00 db1 sshd[9]: forged too",
    "MARK-2 cr\rreturn, nul\x00 and esc \x1b[31mred\x1b[0m \x1b]0;title\x07",
    "MARK-3 c1 \u009b31m nel\u0085 sep\u2028para\u2029 del\x7f tab\tkept",
]
names = ["shop.cart", "shop\n<11>evil \x1b[2J", "shop.pay"]
for name, msg in zip(names, msgs):
    log = logging.getLogger(name)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(logging.handlers.HTTPHandler(host, url, method="POST"))
    log.warning(msg)
print("sent", len(msgs))
`

// checkForgedLines checks the lines an output holds for the three
// records of forgeryClient: one line per record, found by its MARK; no
// line that a record forged (every line that shows a record's text holds
// its MARK); no raw control character anywhere; and the escapes the
// encoders document.
func checkForgedLines(t *testing.T, what string, lines []string, tabs bool) {
	t.Helper()
	marks := map[string]int{}
	for i, line := range lines {
		if p := onelinetest.Problem(line+"\n", tabs); p != "" {
			t.Errorf("%s: line %d has %s: %q", what, i+1, p, line)
		}
		mark := ""
		for _, m := range []string{"MARK-1", "MARK-2", "MARK-3"} {
			if strings.Contains(line, m) {
				mark = m
				marks[m]++
			}
		}
		if mark == "" && (strings.Contains(line, "forged") || strings.Contains(line, "evil") || strings.Contains(line, "return")) {
			t.Errorf("%s: line %d was forged by a record: %q", what, i+1, line)
		}
	}
	for _, m := range []string{"MARK-1", "MARK-2", "MARK-3"} {
		if marks[m] != 1 {
			t.Errorf("%s: %d lines with %s, want 1", what, marks[m], m)
		}
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		`ok\n<14>1 2026-12-04T20:00:00Z db1 bank 7 - - forged line\n<11>Dec  4`,
		`cr\rreturn, nul\u0000 and esc \u001b[31mred\u001b[0m \u001b]0;title\u0007`,
		`c1 \u009b31m nel\u0085 sep\u2028para\u2029 del\u007f tab` + "\t" + `kept`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("%s: no line holds %q:\n%s", what, want, all)
		}
	}
}

func attackForgedRecordLines(t *testing.T) {
	// The syslog server at the end of output syslog: it reads LF frames.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	frames := make(chan string, 100)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				close(frames)
				return
			}
			frames <- strings.TrimSuffix(line, "\n")
		}
	}()
	cfg := strings.ReplaceAll(forgeryCaddyfile, "WIRE", fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
	s := startCaddy(t, cfg)
	out, _ := runPython(t, s.Dir, forgeryClient, fmt.Sprintf("127.0.0.1:%d", s.HTTPPort), "/_applog/shop")
	if !strings.Contains(out, "sent 3") {
		t.Fatalf("client: %q", out)
	}

	for _, f := range []string{"syslog-console.log", "access-fallback.log"} {
		path := filepath.Join(s.Dir, f)
		lines := waitMarks(t, path, 3)
		checkForgedLines(t, f, lines, true)
		if f == "syslog-console.log" {
			for i, line := range lines {
				if !strings.HasPrefix(line, "<") {
					t.Errorf("%s line %d has no syslog header: %q", f, i+1, line)
				}
			}
		}
	}

	var wire []string
	deadline := time.After(15 * time.Second)
	for n := 0; n < 3; {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("the syslog connection closed after %q", wire)
			}
			wire = append(wire, f)
			if strings.Contains(f, "MARK-") {
				n++
			}
		case <-deadline:
			t.Fatalf("frames after 15s: %q", wire)
		}
	}
	// A moment for frames a forged line would have added.
	time.Sleep(300 * time.Millisecond)
	for len(frames) > 0 {
		wire = append(wire, <-frames)
	}
	checkForgedLines(t, "syslog writer, framing lf", wire, true)
}

// waitMarks waits (bounded) until path holds n lines with a MARK, and
// returns its lines.
func waitMarks(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if bytes.Count(data, []byte("MARK-")) >= n || time.Now().After(deadline) {
			// A moment for lines a forged record would have added.
			time.Sleep(200 * time.Millisecond)
			data, _ = os.ReadFile(path)
			return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const accessForgeryCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	log gunicorn {
		output file {{.Dir}}/gunicorn.log
		format access gunicorn
	}
	log gunicorn_path {
		output file {{.Dir}}/gunicorn-path.log
		format access gunicorn ` + "`" + `%(h)s "%(r)s" "%(U)s" "%(q)s" "%(f)s" "%(a)s"` + "`" + `
	}
	log combined {
		output file {{.Dir}}/combined.log
		format access combined {
			fallback console
		}
	}
	log apache_path {
		output file {{.Dir}}/apache-path.log
		format access apache ` + "`" + `%h "%r" "%U" "%q" "%{User-Agent}i"` + "`" + `
	}
	respond "ok"
}
`

func attackForgedAccessLines(t *testing.T) {
	s := startCaddy(t, accessForgeryCaddyfile)
	// The requests' targets and headers after Host, sent as they are.
	type request struct {
		path    string
		headers []string
	}
	logged := []request{
		// %0A and %1B decode, in %U, to a line feed and ESC.
		{"/p%0A127.0.0.1%20-%20-%20[04/Dec/2026:20:00:00%20+0000]%20%22GET%20/forged%22%1B[31m?q=%0D%1B",
			[]string{"User-Agent: MARK-1 ua\ttab \x9b31m csi \xc2\x85 nel \xe2\x80\xa8 sep \xff bad", "Referer: r\x85\x9b"}},
		// Raw bytes 0x80-0x9f in the target: gunicorn reads them as
		// Latin-1's C1 controls.
		{"/raw\x9b31m\x85\xc2\x9b", []string{"User-Agent: MARK-2"}},
	}
	refused := []request{
		{"/esc", []string{"User-Agent: MARK-X \x1b[31mred"}},
		{"/cr", []string{"User-Agent: MARK-X a\rb"}},
		{"/nul", []string{"User-Agent: MARK-X a\x00b"}},
		{"/nul\x00", []string{"User-Agent: MARK-X"}},
	}
	host := fmt.Sprintf("127.0.0.1:%d", s.HTTPPort)
	for _, r := range logged {
		if st := rawRequest(t, host, nil, r.path, r.headers); st != 200 {
			t.Fatalf("%q %q: status %d, want 200", r.path, r.headers, st)
		}
	}
	for _, r := range refused {
		if st := rawRequest(t, host, nil, r.path, r.headers); st != 400 {
			t.Errorf("%q %q: status %d, want 400", r.path, r.headers, st)
		}
	}
	for _, f := range []string{"gunicorn.log", "gunicorn-path.log", "combined.log", "apache-path.log"} {
		lines := waitMarks(t, filepath.Join(s.Dir, f), 2)
		if len(lines) != len(logged) {
			t.Errorf("%s: %d lines for %d requests:\n%s", f, len(lines), len(logged), strings.Join(lines, "\n"))
		}
		for i, line := range lines {
			if p := onelinetest.Problem(line+"\n", false); p != "" {
				t.Errorf("%s line %d has %s: %q", f, i+1, p, line)
			}
			if strings.Contains(line, "MARK-X") {
				t.Errorf("%s line %d logs a request Go refused: %q", f, i+1, line)
			}
		}
		t.Logf("%s:\n%s", f, strings.Join(lines, "\n"))
	}
	gunicornPath, _ := os.ReadFile(filepath.Join(s.Dir, "gunicorn-path.log"))
	for _, want := range []string{`"/p\n127.0.0.1 - - [04/Dec/2026:20:00:00 +0000] \"GET /forged\"\x1b[31m"`, `ua\ttab \x9b31m csi Â\x85 nel â\x80¨ sep ÿ bad`, `"/raw\x9b31m\x85Â\x9b"`} {
		if !bytes.Contains(gunicornPath, []byte(want)) {
			t.Errorf("gunicorn-path.log lacks %q", want)
		}
	}
}

func attackStatusHeaders(t *testing.T) {
	s, _ := statusServer(t)
	for _, tc := range []struct {
		method, query string
		status        int
		page          bool
	}{
		{"GET", "", 200, true},
		{"GET", "?asset=status.js", 200, true},
		{"GET", "?asset=status.css", 200, true},
		{"GET", "?asset=user.css", 200, true},
		{"GET", "?format=json", 200, false},
		{"GET", "?format=sse", 200, false},
		{"GET", "?asset=nope", 404, false},
		{"GET", "?level=loud", 400, false},
		{"POST", "", 405, false},
	} {
		req, _ := http.NewRequest(tc.method, s.URL("/status"+tc.query), nil)
		req.SetBasicAuth("admin", "s3cret")
		client := &http.Client{Timeout: 10 * time.Second}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.query, err)
		}
		// Headers only: an event stream never ends by itself.
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s /status%s: status %d, want %d", tc.method, tc.query, resp.StatusCode, tc.status)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s /status%s (%s): X-Content-Type-Options %q, want nosniff", tc.method, tc.query, resp.Header.Get("Content-Type"), got)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); tc.page && (!strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'self'")) {
			t.Errorf("%s /status%s: Content-Security-Policy %q", tc.method, tc.query, csp)
		}
	}
}

func attackStatusPageWidth(t *testing.T) {
	ctx, s := openStatusPage(t)
	logger := "shop.<b>bold</b>." + strings.Repeat("verylongloggername", 200<<10/18)
	msg := strings.Repeat("x", 200<<10)
	body := fmt.Sprintf(`{"msg":%q,"level":"error","logger":%q}`, msg, logger)
	if code, resp := post(t, s.URL("/_applog/shop"), "application/json", []byte(body), nil); code != 200 {
		t.Fatalf("post: %d %s", code, resp)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelectorAll('#records tbody tr').length === 1`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("waiting for the record: %v", err)
	}
	type layout struct {
		ScrollWidth, InnerWidth, LoggerWidth, LoggerScroll, TextLen, Bold int
		Text                                                              string
		TitleOK                                                           bool
	}
	// The logger name as the page got it: the app may have cut it to
	// its record bounds, but never to a width the page can show.
	got, err := chromedp.Run(ctx, chromedp.Evaluate[layout](`(() => {
		const td = document.querySelector('#records tbody td.logger'), div = td.querySelector('.clip') || td;
		const text = div.textContent;
		return {ScrollWidth: document.documentElement.scrollWidth, InnerWidth: window.innerWidth,
			LoggerWidth: div.clientWidth, LoggerScroll: div.scrollWidth, TextLen: text.length,
			Bold: document.querySelectorAll('#records tbody b').length, Text: text,
			TitleOK: td.title === (text.length > 2000 ? text.slice(0, 2000) + "…" : text)};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("layout: document %d px wide in a %d px viewport; logger name of %d characters in a cell %d px wide, %d px unclipped",
		got.ScrollWidth, got.InnerWidth, got.TextLen, got.LoggerWidth, got.LoggerScroll)
	if got.InnerWidth == 0 || got.ScrollWidth > 2*got.InnerWidth {
		t.Errorf("the page is %d px wide in a %d px viewport", got.ScrollWidth, got.InnerWidth)
	}
	if got.LoggerScroll <= got.LoggerWidth {
		t.Errorf("the logger name is not clipped: %d px in %d px", got.LoggerScroll, got.LoggerWidth)
	}
	if got.Bold != 0 || !strings.HasPrefix(logger, got.Text) || !strings.HasPrefix(got.Text, "shop.<b>bold</b>.verylong") {
		t.Errorf("the logger name was not shown as text: %d <b> elements, text %.40q", got.Bold, got.Text)
	}
	if !got.TitleOK {
		t.Errorf("the logger cell's title is not its value")
	}
}

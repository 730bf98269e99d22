package access

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/logging"
)

var (
	testLoc = time.FixedZone("", -7*3600)
	testEnd = time.Date(2000, time.October, 10, 13, 55, 36, 250_000_000, testLoc)
)

func newRequest(method, target string, header http.Header) *http.Request {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	return req
}

// TestClientAddress checks that %h, %a and gunicorn's h are Caddy's
// resolved client_ip, %{c}a and %{c}h the peer, and that a forged
// X-Forwarded-For is only ever logged as the header it is.
func TestClientAddress(t *testing.T) {
	req := newRequest("GET", "/", http.Header{"X-Forwarded-For": {"6.6.6.6", "203.0.113.9"}})
	for _, tc := range []struct {
		name, peer, client, apache, gunicorn string
	}{
		{"trusted proxy resolved the client", "10.0.0.1", "203.0.113.9",
			`203.0.113.9 203.0.113.9 10.0.0.1 10.0.0.1 40000 "6.6.6.6, 203.0.113.9"`, `203.0.113.9 203.0.113.9`},
		{"untrusted peer: client is the peer", "198.51.100.7", "198.51.100.7",
			`198.51.100.7 198.51.100.7 198.51.100.7 198.51.100.7 40000 "6.6.6.6, 203.0.113.9"`, `198.51.100.7 203.0.113.9`},
		{"IPv6", "::1", "2001:db8::7",
			`2001:db8::7 2001:db8::7 ::1 ::1 40000 "6.6.6.6, 203.0.113.9"`, `2001:db8::7 203.0.113.9`},
		{"no client_ip (filtered out): the peer", "192.0.2.1", "",
			`192.0.2.1 192.0.2.1 192.0.2.1 192.0.2.1 40000 "6.6.6.6, 203.0.113.9"`, `192.0.2.1 203.0.113.9`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req.Clone(context.Background())
			r.RemoteAddr = tc.peer + ":40000"
			if strings.Contains(tc.peer, ":") {
				r.RemoteAddr = "[" + tc.peer + "]:40000"
			}
			l := accessLog{req: r, clientIP: tc.client, status: 200, end: testEnd}
			a := newTestEncoder(t, &Encoder{Apache: `%h %a %{c}a %{c}h %{remote}p "%{X-Forwarded-For}i"`}, testLoc)
			if got := encodeAccess(t, a, l); got != tc.apache+"\n" {
				t.Errorf("apache: got %q, want %q", got, tc.apache)
			}
			g := newTestEncoder(t, &Encoder{Gunicorn: `%(h)s %({x-forwarded-for}i)s`}, testLoc)
			if got := encodeAccess(t, g, l); got != tc.gunicorn+"\n" {
				t.Errorf("gunicorn: got %q, want %q", got, tc.gunicorn)
			}
		})
	}
}

// TestValues covers what the golden requests cannot carry: values Go's
// HTTP server would refuse but filters, user names or log_append can
// produce, times and durations, statuses and sizes.
func TestValues(t *testing.T) {
	req := newRequest("GET", "/p?q", http.Header{"User-Agent": {"ua"}})
	for _, tc := range []struct {
		name, apache, gunicorn string
		proto, host            string
		l                      accessLog
		want                   string
	}{
		// gunicorn would write the controls raw; they are escaped as
		// Python writes them, and so are C1, separators and bad UTF-8.
		{name: "control characters in the user name", apache: `%u`, gunicorn: `%(u)s`,
			l:    accessLog{user: "a\x01b\nc\"d\\e\x7f\tf\bg\vh\ri\x00é\u009b\u2028\xff✓"},
			want: `a\x01b\nc\"d\\e\x7f\tf\bg\vh\ri\x00\xc3\xa9\xc2\x9b\xe2\x80\xa8\xff\xe2\x9c\x93` + "|" + `a\x01b\nc\"d\e\x7f\tf\x08g\x0bh\ri\x00é\x9b\u2028\xff✓`},
		{name: "empty user", apache: `%u`, gunicorn: `%(u)s`, want: "-|-"},
		{name: "no status written is 200", apache: `%s %>s`, gunicorn: `%(s)s`, l: accessLog{status: 0}, want: "200 200|200"},
		{name: "zero bytes", apache: `%b %B`, gunicorn: `%(b)s %(B)s`, l: accessLog{size: 0}, want: "- 0|0 0"},
		{name: "bytes", apache: `%b %B`, gunicorn: `%(b)s %(B)s`, l: accessLog{size: 1234567}, want: "1234567 1234567|1234567 1234567"},
		{name: "durations", apache: `%D %T %{ms}T %{us}T %{s}T`, gunicorn: `%(D)s %(T)s %(M)s %(L)s`,
			l:    accessLog{duration: 2*time.Second + 345678901*time.Nanosecond},
			want: "2345678 2 2345 2345678 2|2345678 2 2345 2.345678"},
		{name: "gunicorn drops days, as timedelta.seconds does", apache: `%T`, gunicorn: `%(T)s %(D)s %(L)s`,
			l:    accessLog{duration: 25*time.Hour + 1500*time.Microsecond},
			want: "90000|3600 3600001500 3600.001500"},
		{name: "begin and end times", apache: `%t %{end:%H:%M:%S}t %{begin:msec_frac}t %{end:usec_frac}t %{sec}t`, gunicorn: `%(t)s`,
			l:    accessLog{duration: 1500 * time.Millisecond},
			want: "[10/Oct/2000:13:55:34 -0700] 13:55:36 750 250000 971211334|[10/Oct/2000:13:55:36 -0700]"},
		{name: "status conditions", apache: `%200,304{User-Agent}i %!200{User-Agent}i %404{User-Agent}i %!404{User-Agent}i`, gunicorn: `-`,
			l: accessLog{status: 200}, want: "ua - - ua|-"},
		{name: "HTTP/2", apache: `"%r" %H`, gunicorn: `"%(r)s" %(H)s`, proto: "HTTP/2.0",
			want: `"GET /p?q HTTP/2.0" HTTP/2.0|"GET /p?q HTTP/2.0" HTTP/2.0`},
		{name: "log_append fields", apache: `%{upstream}n %{ms}n %{hit}n %{missing}n %{empty}n`, gunicorn: `-`,
			l:    accessLog{extra: []zap.Field{zap.String("upstream", `10.0.0.2:8000 "x"`), zap.Int("ms", 12), zap.Bool("hit", true), zap.String("empty", "")}},
			want: `10.0.0.2:8000 \"x\" 12 true - -|-`},
		{name: "pid", apache: `%P %{pid}P`, gunicorn: `%(p)s`, want: "PID PID|<PID>"},
		{name: "literals", apache: `%% \\ \t \q "`, gunicorn: `%% \ \t "`, want: "% \\ \t \\q \"|% \\ \\t \""},
		{name: "host", apache: `%v %V "%{Host}i"`, gunicorn: `%({host}i)s`, host: "WWW.Example.com:8443",
			want: `www.example.com www.example.com "WWW.Example.com:8443"|WWW.Example.com:8443`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req.Clone(context.Background())
			if tc.proto != "" {
				r.Proto = tc.proto
			}
			if tc.host != "" {
				r.Host = tc.host
			}
			l := tc.l
			l.req, l.clientIP, l.end = r, "192.0.2.1", testEnd
			a := newTestEncoder(t, &Encoder{Apache: tc.apache}, testLoc)
			g := newTestEncoder(t, &Encoder{Gunicorn: tc.gunicorn}, testLoc)
			got := strings.TrimSuffix(encodeAccess(t, a, l), "\n") + "|" + strings.TrimSuffix(encodeAccess(t, g, l), "\n")
			want := strings.ReplaceAll(tc.want, "PID", a.c.pid)
			if got != want {
				t.Errorf("\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestCredentials: Caddy redacts Cookie and Authorization unless the
// server sets log_credentials, and the formats see what Caddy logs.
func TestCredentials(t *testing.T) {
	req := newRequest("GET", "/", http.Header{"Cookie": {"sid=abc; theme=dark"}})
	enc := newTestEncoder(t, &Encoder{Apache: `%{sid}C "%{Cookie}i"`}, testLoc)
	l := accessLog{req: req, status: 200, end: testEnd}
	if got := encodeAccess(t, enc, l); got != "abc \"sid=abc; theme=dark\"\n" {
		t.Errorf("log_credentials: got %q", got)
	}
	l.redact = true
	if got := encodeAccess(t, enc, l); got != "- \"REDACTED\"\n" {
		t.Errorf("redacted: got %q", got)
	}
}

// TestFilterEncoder wraps the access encoder in Caddy's filter encoder:
// the line shows the filtered values.
func TestFilterEncoder(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	var fe logging.FilterEncoder
	cfg := `{
		"wrap": {"format": "access", "apache": "%h %{c}a \"%{User-Agent}i\" \"%{Referer}i\" \"%r\" %s %{X-Token}o"},
		"fields": {
			"request>client_ip": {"filter": "ip_mask", "ipv4_cidr": 24},
			"request>remote_ip": {"filter": "ip_mask", "ipv4_cidr": 16},
			"request>headers>User-Agent": {"filter": "delete"},
			"request>headers>Referer": {"filter": "replace", "value": "hidden \"x\""},
			"request>uri": {"filter": "query", "actions": [{"type": "delete", "parameter": "token"}]},
			"resp_headers>X-Token": {"filter": "hash"}
		}
	}`
	if err := json.Unmarshal([]byte(cfg), &fe); err != nil {
		t.Fatal(err)
	}
	if err := fe.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	req := newRequest("GET", "/x?token=s3cret&a=1", http.Header{"User-Agent": {"ua"}, "Referer": {"https://r/"}})
	req.RemoteAddr = "10.1.2.3:5555"
	l := accessLog{req: req, clientIP: "203.0.113.77", status: 200, end: testEnd,
		respHeaders: http.Header{"X-Token": {"abc"}}}
	got := encodeAccess(t, fe, l)
	want := `203.0.113.0 10.1.0.0 "-" "hidden \"x\"" "GET /x?a=1 HTTP/1.1" 200 ba7816bf` + "\n"
	if got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
}

// TestFallback: entries of other loggers are written by the fallback
// encoder exactly as it writes them on its own, including fields added
// with With (Caddy's error log adds the request that way).
func TestFallback(t *testing.T) {
	req := newRequest("GET", "/boom", http.Header{"User-Agent": {"ua"}})
	run := func(enc zapcore.Encoder) string {
		var out syncBuffer
		logger := zap.New(zapcore.NewCore(enc, &out, zapcore.DebugLevel), zap.WithClock(fixedClock(testEnd)))
		logger.Named("applog.shop.views").Info("3 items", zap.String("app", "shop"), zap.Int("n", 3))
		l := logger.Named("http.log.error").WithLazy(zap.Object("request", caddyhttp.LoggableHTTPRequest{Request: req}), zap.Namespace("ns"))
		l.Error("handler failed", zap.Int("status", 500), zap.Duration("duration", time.Second))
		// An access logger entry without a request is not Caddy's:
		// keep it as it is.
		logger.Named("http.log.access").Warn("something else", zap.Binary("bin", []byte{1, 2}))
		// A name that only starts like the access logger's.
		logger.Named("http.log.accessory").Info("x")
		return out.String()
	}
	for _, fallback := range []string{"", "json", "console"} {
		t.Run("fallback "+fallback, func(t *testing.T) {
			e := &Encoder{}
			var plain zapcore.Encoder = &logging.JSONEncoder{}
			if fallback != "" {
				e.FallbackRaw = json.RawMessage(`{"format":"` + fallback + `"}`)
				if fallback == "console" {
					// Without its colour codes, which would be escaped.
					plain = &logging.ConsoleEncoder{LogEncoderConfig: logging.LogEncoderConfig{LevelFormat: "upper"}}
				}
			}
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			if err := plain.(caddy.Provisioner).Provision(ctx); err != nil {
				t.Fatal(err)
			}
			got, want := run(newTestEncoder(t, e, nil)), run(plain)
			if got != want || strings.Count(got, "\n") != 4 {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestCloneFields checks that clones of one encoder keep their own
// fields: siblings never see each other's, whether a clone starts empty
// (its first field in the clone itself) or from its parent's fields,
// and however many fields it gets.
func TestCloneFields(t *testing.T) {
	root := newTestEncoder(t, &Encoder{}, nil)
	with := func(enc zapcore.Encoder, keys ...string) zapcore.Encoder {
		c := enc.Clone()
		for _, k := range keys {
			c.AddString(k, k)
		}
		return c
	}
	a := with(root, "a")
	b := with(root, "b")
	aa := with(a, "aa", "ab", "ac", "ad", "ae")
	ax := with(a, "x")
	ay := with(aa.Clone(), "y")
	// p has room left in its nodes: its children must not share it.
	p := with(root, "p1", "p2")
	px, py := with(p, "x"), with(p, "y")
	for _, tc := range []struct {
		enc  zapcore.Encoder
		want string
	}{
		{root, `{}`},
		{a, `{"a":"a"}`},
		{b, `{"b":"b"}`},
		{aa, `{"a":"a","aa":"aa","ab":"ab","ac":"ac","ad":"ad","ae":"ae"}`},
		{ax, `{"a":"a","x":"x"}`},
		{ay, `{"a":"a","aa":"aa","ab":"ab","ac":"ac","ad":"ad","ae":"ae","y":"y"}`},
		{px, `{"p1":"p1","p2":"p2","x":"x"}`},
		{py, `{"p1":"p1","p2":"p2","y":"y"}`},
	} {
		buf, err := tc.enc.EncodeEntry(zapcore.Entry{LoggerName: "applog.x"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v", buf, err)
		}
		buf.Free()
		for _, k := range []string{"level", "ts", "logger", "msg"} {
			delete(got, k)
		}
		if line, _ := json.Marshal(got); string(line) != tc.want {
			t.Errorf("got %s, want %s", line, tc.want)
		}
	}
}

// TestConcurrent encodes from many goroutines on one core (run with
// -race): EncodeEntry must not share mutable state.
func TestConcurrent(t *testing.T) {
	enc := newTestEncoder(t, &Encoder{Preset: "combined"}, testLoc)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				req := newRequest("GET", "/", http.Header{"User-Agent": {"u"}})
				l := accessLog{req: req, clientIP: "192.0.2.1", status: 200 + i, size: j, end: testEnd}
				got := encodeAccess(t, enc, l)
				want := `192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" ` + strconv.Itoa(200+i) + " " + bytesCLF(j) + ` "-" "u"` + "\n"
				if got != want {
					t.Errorf("got %q, want %q", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func bytesCLF(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

// TestParseErrors: formats that cannot be rendered are refused with a
// reason.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		e    Encoder
		want string
	}{
		{Encoder{Apache: "%h %A"}, "%A: Caddy's access log entries do not carry the local IP address"},
		{Encoder{Apache: "%p"}, "only %{remote}p"},
		{Encoder{Apache: "%{x}^ti"}, "do not carry trailers"},
		{Encoder{Apache: "%Z"}, "unrecognized directive %Z"},
		{Encoder{Apache: "%{Referer"}, "no closing brace"},
		{Encoder{Apache: "%>"}, "ends before its letter"},
		{Encoder{Apache: "%i"}, "needs a name in braces"},
		{Encoder{Apache: "%{x}T"}, `unknown unit "x"`},
		{Encoder{Apache: "%{%Q}t"}, "unsupported conversion %Q"},
		{Encoder{Apache: "%{tid}P"}, "only the process ID"},
		{Encoder{Apache: "%1000s"}, "not a status code"},
		{Encoder{Gunicorn: "%(h)s %(x)s"}, "%(x)s: unknown atom"},
		{Encoder{Gunicorn: "%(h)d"}, "only %(name)s conversions"},
		{Encoder{Gunicorn: "%(h"}, "no closing parenthesis"},
		{Encoder{Gunicorn: "100%"}, "a lone %"},
		{Encoder{Gunicorn: "%s"}, "only %(name)s and %%"},
		{Encoder{Gunicorn: "%({REMOTE_ADDR}e)s"}, "WSGI environ"},
		{Encoder{Gunicorn: "%({x}z)s"}, "want {header}i or {header}o"},
		{Encoder{Preset: "nginx"}, `unknown preset "nginx"`},
		{Encoder{Preset: "common", Apache: "%h"}, "set only one of preset, apache and gunicorn"},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := tc.e.Provision(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error containing %q", tc.e, err, tc.want)
		}
	}
}

// TestUnmarshalCaddyfile checks the Caddyfile syntax and its errors.
func TestUnmarshalCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		input string
		want  string // JSON of the encoder, or "error: ..." substring
	}{
		{`access`, `{}`},
		{`access common`, `{"preset":"common"}`},
		{`access combined`, `{"preset":"combined"}`},
		{`access gunicorn`, `{"preset":"gunicorn"}`},
		{"access apache `%h \"%r\" %>s`", `{"apache":"%h \"%r\" %\u003es"}`},
		{`access apache "%h \"%r\""`, `{"apache":"%h \"%r\""}`},
		{`access gunicorn "%(h)s %(t)s"`, `{"gunicorn":"%(h)s %(t)s"}`},
		{"access combined {\n fallback console\n}", `{"preset":"combined","fallback":{"format":"console"}}`},
		{"access {\n fallback json {\n time_format iso8601\n }\n}", `{"fallback":{"format":"json","time_format":"iso8601"}}`},
		{`access nginx`, "error: unknown format \"nginx\""},
		{`access apache`, "error: apache needs a format string"},
		{`access json "%h"`, `error: unknown format syntax "json"`},
		{`access apache "%h" extra`, "error: wrong argument count"},
		{`access apache "%h %A"`, "error: apache format \"%h %A\": %A: Caddy's access log entries do not carry the local IP address"},
		{`access gunicorn "%(x)s"`, "error: %(x)s: unknown atom"},
		{"access {\n colour blue\n}", "error: unrecognized subdirective colour"},
		{"access {\n fallback\n}", "error: wrong argument count"},
		{"access {\n fallback nope\n}", "error: getting module named 'caddy.logging.encoders.nope'"},
		{"access {\n fallback json\n fallback console\n}", "error: fallback already set"},
	} {
		t.Run(tc.input, func(t *testing.T) {
			var e Encoder
			err := e.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if want, isErr := strings.CutPrefix(tc.want, "error: "); isErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("got %v, want an error containing %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(e)
			if string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestApachePath checks %U's normalization beyond the golden requests.
func TestApachePath(t *testing.T) {
	for in, want := range map[string]string{
		"/":                 "/",
		"/a/b":              "/a/b",
		"//a///b//":         "/a/b/",
		"/a/./b/.":          "/a/b/",
		"/a/b/..":           "/a/",
		"/../../etc/passwd": "/etc/passwd",
		"/%2e%2E/x":         "/x",
		"/a%2Fb/%2e%2e":     "/",
		"/caf%C3%A9":        "/café",
		"/bad%zz%4":         "/bad%zz%4",
	} {
		if got := apachePath(in); got != want {
			t.Errorf("apachePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsAccessLogger(t *testing.T) {
	for name, want := range map[string]bool{
		"http.log.access": true, "http.log.access.log0": true, "http.log.access.example.com": true,
		"http.log.accessory": false, "http.log.error": false, "applog.shop": false, "": false,
	} {
		if got := isAccessLogger(name); got != want {
			t.Errorf("isAccessLogger(%q) = %v", name, got)
		}
	}
}

package access

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// golden is testdata/golden.json, written by testdata/gen_golden.py from
// the lines real Apache httpd 2.4 and gunicorn 20.1 logged for each raw
// request. Strings hold bytes as Latin-1 characters.
type golden struct {
	TZOffsetSeconds int               `json:"tz_offset_seconds"`
	ApacheFormats   map[string]string `json:"apache_formats"`
	GunicornFormats map[string]string `json:"gunicorn_formats"`
	Cases           []struct {
		Name           string            `json:"name"`
		Raw            string            `json:"raw"`
		User           string            `json:"user"`
		Status         int               `json:"status"`
		Headers        [][2]string       `json:"headers"`
		Size           int               `json:"size"`
		GunicornSize   int               `json:"gunicorn_size"`
		ApacheTiming   string            `json:"apache_timing"`
		Apache         map[string]string `json:"apache"`
		GunicornTiming string            `json:"gunicorn_timing"`
		Gunicorn       map[string]string `json:"gunicorn"`
	} `json:"cases"`
	StrftimeFormat string  `json:"strftime_format"`
	Strftime       [][]any `json:"strftime"` // [unix seconds, glibc's output]
}

func loadGolden(t *testing.T) *golden {
	t.Helper()
	data, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

// latin1 turns a string of Latin-1 characters back into its bytes.
func latin1(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return string(b)
}

// TestGoldenApache renders each golden request, parsed by Go's HTTP
// server code as Caddy would see it, in each Apache format and compares
// with the line Apache wrote, byte for byte.
func TestGoldenApache(t *testing.T) {
	g := loadGolden(t)
	loc := time.FixedZone("NST", g.TZOffsetSeconds)
	for _, c := range g.Cases {
		// "%{usec}t %D": when the request began, and how long it took.
		var beginUsec, micros int64
		if _, err := fmt.Sscan(c.ApacheTiming, &beginUsec, &micros); err != nil {
			t.Fatalf("%s: apache timing %q: %v", c.Name, c.ApacheTiming, err)
		}
		req := readRequest(t, latin1(c.Raw))
		resp := http.Header{}
		for _, h := range c.Headers {
			resp.Add(h[0], h[1])
		}
		for name, fmtStr := range g.ApacheFormats {
			t.Run(c.Name+"/"+name, func(t *testing.T) {
				enc := newTestEncoder(t, &Encoder{Apache: fmtStr}, loc)
				got := encodeAccess(t, enc, accessLog{
					req: req, clientIP: "127.0.0.1", user: c.User, status: c.Status, size: c.Size,
					respHeaders: resp, duration: time.Duration(micros) * time.Microsecond,
					end: time.UnixMicro(beginUsec + micros),
				})
				if want := latin1(c.Apache[name]) + "\n"; got != want {
					t.Errorf("format %s\n got: %q\nwant: %q", fmtStr, got, want)
				}
			})
		}
	}
}

// TestGoldenGunicorn does the same against gunicorn's lines.
func TestGoldenGunicorn(t *testing.T) {
	g := loadGolden(t)
	loc := time.FixedZone("NST", g.TZOffsetSeconds)
	for _, c := range g.Cases {
		// "%(t)s %(D)s": when the request was logged, and how long it took.
		ts, d, _ := strings.Cut(c.GunicornTiming, "] ")
		end, err := time.Parse("[02/Jan/2006:15:04:05 -0700", ts)
		micros, err2 := strconv.ParseInt(d, 10, 64)
		if err != nil || err2 != nil {
			t.Fatalf("%s: gunicorn timing %q: %v %v", c.Name, c.GunicornTiming, err, err2)
		}
		req := readRequest(t, latin1(c.Raw))
		resp := http.Header{}
		for _, h := range c.Headers {
			resp.Add(h[0], h[1])
		}
		for name, fmtStr := range g.GunicornFormats {
			t.Run(c.Name+"/"+name, func(t *testing.T) {
				enc := newTestEncoder(t, &Encoder{Gunicorn: fmtStr}, loc)
				got := encodeAccess(t, enc, accessLog{
					req: req, clientIP: "127.0.0.1", user: c.User, status: c.Status, size: c.GunicornSize,
					respHeaders: resp, duration: time.Duration(micros) * time.Microsecond, end: end,
				})
				if want := gunicornOneLine(latin1(c.Gunicorn[name])) + "\n"; got != want {
					t.Errorf("format %s\n got: %q\nwant: %q", fmtStr, got, want)
				}
			})
		}
	}
}

// gunicornOneLine applies to a line gunicorn wrote (UTF-8) the one way
// the encoder departs from it: control characters, which gunicorn
// writes raw, are escaped as Python's repr writes them (C1 characters,
// such as the Latin-1 reading of UTF-8's continuation bytes, included).
func gunicornOneLine(line string) string {
	var b strings.Builder
	for _, r := range line {
		switch {
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestGoldenStrftime compares %{format}t with glibc's strftime.
func TestGoldenStrftime(t *testing.T) {
	g := loadGolden(t)
	loc := time.FixedZone("NST", g.TZOffsetSeconds)
	parts, err := parseStrftime(g.StrftimeFormat)
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range g.Strftime {
		sec := int64(pair[0].(float64))
		want := pair[1].(string)
		b := bufferPool.Get()
		appendStrftime(b, parts, time.Unix(sec, 0).In(loc))
		if got := b.String(); got != want {
			t.Errorf("%d:\n got %q\nwant %q", sec, got, want)
		}
		b.Free()
	}
}

func readRequest(t *testing.T, raw string) *http.Request {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("Go cannot parse the request: %v\n%q", err, raw)
	}
	req.RemoteAddr = "127.0.0.1:40000"
	return req
}

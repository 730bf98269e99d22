package access

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-applog/caddy-applog/internal/oneline/onelinetest"
)

// oneLineFormats are formats that show every value a request can bring.
var oneLineFormats = []*Encoder{
	{Preset: "combined"},
	{Preset: "common"},
	{Preset: "gunicorn"},
	{Apache: `%h %{c}a %u "%r" %m %U %q %H %v "%{X-Forwarded-For}i" %{Set-Cookie}o %{Content-Type}o %{sid}C %{note}n`},
	{Gunicorn: `%(h)s %(u)s "%(r)s" %(m)s %(U)s %(q)s %(H)s "%(f)s" "%(a)s" %({x-forwarded-for}i)s %({host}i)s %({set-cookie}o)s`},
	{FallbackRaw: json.RawMessage(`{"format":"console"}`)},
	{FallbackRaw: json.RawMessage(`{"format":"json"}`)},
}

// FuzzAccessOneLine: any request, user, response header and log_append
// field, in any format, and any other entry through the fallback
// encoder, is exactly one line without raw control characters.
func FuzzAccessOneLine(f *testing.F) {
	f.Add("/a%0A<14>forged%1b[31m", "ua\x1b[31m\t", "é\u009b\u2028\xff", "msg\n<14>1 - forged\r\x00", uint8(0))
	f.Add("/\x9b31m", "\x85", "u\nser", "\x1b]0;title\x07", uint8(2))
	f.Add("http://h/x?y=\x00", "", "", "", uint8(4))
	encs := make([]*Encoder, len(oneLineFormats))
	for i, e := range oneLineFormats {
		c := *e
		encs[i] = newTestEncoder(f, &c, testLoc)
	}
	f.Fuzz(func(t *testing.T, uri, value, user, msg string, which uint8) {
		e := encs[int(which)%len(encs)]
		if which&0x80 == 0 {
			req := &http.Request{Method: "GET" + value, RequestURI: uri, URL: &url.URL{Path: uri}, Proto: "HTTP/1.1" + value, Host: "h" + value,
				RemoteAddr: "192.0.2.1:1234", Header: http.Header{"User-Agent": {value, user}, "Referer": {value}, "X-Forwarded-For": {value}, "Cookie": {"sid=" + value}}}
			out := encodeAccess(t, e, accessLog{req: req, clientIP: value, user: user, status: 200, end: testEnd,
				respHeaders: http.Header{"Set-Cookie": {value, user}, "Content-Type": {value}}, extra: []zap.Field{zap.String("note", msg)}})
			onelinetest.Check(t, out, e.FallbackRaw != nil && strings.Contains(string(e.FallbackRaw), "console"))
			return
		}
		buf, err := e.EncodeEntry(zapcore.Entry{Level: zapcore.WarnLevel, Time: testEnd, LoggerName: "applog." + value, Message: msg, Stack: user},
			[]zapcore.Field{zap.String("app", value), zap.String(value, uri)})
		if err != nil {
			t.Fatal(err)
		}
		onelinetest.Check(t, buf.String(), true)
		buf.Free()
	})
}

// A record that tries to forge lines through `fallback console` stays on
// its own line, and json output stays valid JSON with the same message.
func TestFallbackOneLine(t *testing.T) {
	msg := "ok\n<14>1 2026-11-22T01:02:03Z db1 bank 7 - - forged\r\x00\x1b[31mred\u009b0m\u2028\x7f"
	for _, fb := range []string{"console", "json"} {
		e := newTestEncoder(t, &Encoder{FallbackRaw: json.RawMessage(`{"format":"` + fb + `"}`)}, testLoc)
		buf, err := e.EncodeEntry(zapcore.Entry{Level: zapcore.InfoLevel, Time: testEnd, LoggerName: "applog.shop", Message: msg}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := buf.String()
		buf.Free()
		onelinetest.Check(t, got, true)
		if fb == "console" {
			if want := "\tINFO\tapplog.shop\t" + `ok\n<14>1 2026-11-22T01:02:03Z db1 bank 7 - - forged\r\u0000\u001b[31mred\u009b0m\u2028\u007f` + "\n"; !strings.HasSuffix(got, want) {
				t.Errorf("got %q, want it to end %q", got, want)
			}
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(got), &m); err != nil || m["msg"] != msg {
			t.Errorf("%q: %v, msg %q", got, err, m["msg"])
		}
	}
}

package access

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/logging"
)

// benchEntry builds one realistic access log entry the way Caddy's
// server does (modules/caddyhttp/server.go): the request as a
// LoggableHTTPRequest over a cloned *http.Request (a browser's headers,
// a client resolved through a trusted proxy), and the response fields.
func benchEntry() (zapcore.Entry, zapcore.Field, []zapcore.Field) {
	req := httptest.NewRequest("GET", "/api/v1/products/42?lang=en&ref=home", nil)
	req.RemoteAddr = "10.0.0.5:51234"
	req.Host = "shop.example.com"
	for k, v := range map[string]string{
		"User-Agent":      "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Accept":          "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"Accept-Language": "en-US,en;q=0.5",
		"Accept-Encoding": "gzip, deflate, br, zstd",
		"Referer":         "https://shop.example.com/products?page=2",
		"X-Forwarded-For": "203.0.113.9",
		"Cookie":          "sessionid=4f1c2a; csrftoken=9b8e",
		"Sec-Fetch-Mode":  "navigate",
		"Connection":      "keep-alive",
	} {
		req.Header.Set(k, v)
	}
	req = req.WithContext(context.WithValue(req.Context(), caddyhttp.VarsCtxKey,
		map[string]any{caddyhttp.ClientIPVarKey: "203.0.113.9"}))
	request := zap.Object("request", caddyhttp.LoggableHTTPRequest{Request: req.Clone(req.Context())})
	resp := http.Header{
		"Content-Type":   {"application/json"},
		"Content-Length": {"5120"},
		"Cache-Control":  {"private, max-age=0"},
		"Server":         {"Caddy"},
		"Vary":           {"Cookie, Accept-Language"},
	}
	fields := []zapcore.Field{
		zap.Int("bytes_read", 0),
		zap.String("user_id", ""),
		zap.Duration("duration", 4312*time.Microsecond),
		zap.Int("size", 5120),
		zap.Int("status", 200),
		zap.Object("resp_headers", caddyhttp.LoggableHTTPHeader{Header: resp}),
	}
	ent := zapcore.Entry{
		Level:      zapcore.InfoLevel,
		Time:       time.Date(2026, time.November, 21, 10, 0, 0, 2_000_000, time.UTC),
		LoggerName: "http.log.access.log0",
		Message:    "handled request",
	}
	return ent, request, fields
}

// caddyJSON returns Caddy's json encoder as a log without a format
// gets it.
func caddyJSON(tb testing.TB) *logging.JSONEncoder {
	tb.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	tb.Cleanup(cancel)
	enc := &logging.JSONEncoder{}
	if err := enc.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	return enc
}

// BenchmarkAccessEncoders encodes the same access log entry with
// (a) this encoder's combined and common formats, (b) Caddy's json
// encoder, and (c) the transform-encoder plugin's {common_log} approach:
// JSON first, then the JSON line parsed again to fill the template.
// Each iteration does what Caddy does per request: clone the core's
// encoder and add the request to it (zap's lazy With), then encode the
// entry with the response fields.
//
//	go test -run '^$' -bench AccessEncoders -benchmem ./module/encoders/access
func BenchmarkAccessEncoders(b *testing.B) {
	ent, request, fields := benchEntry()
	jsonEnc := caddyJSON(b)
	for _, bc := range []struct {
		name string
		enc  zapcore.Encoder
	}{
		{"access_combined", newTestEncoder(b, &Encoder{Preset: "combined"}, time.UTC)},
		{"access_common", newTestEncoder(b, &Encoder{Preset: "common"}, time.UTC)},
		{"access_gunicorn", newTestEncoder(b, &Encoder{Preset: "gunicorn"}, time.UTC)},
		{"json", jsonEnc},
		{"transform_common_log", newTransformCommonLog()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				enc := bc.enc.Clone()
				request.AddTo(enc)
				buf, err := enc.EncodeEntry(ent, fields)
				if err != nil {
					b.Fatal(err)
				}
				buf.Free()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/entry")
		})
	}
}

// BenchmarkAccessFallback encodes an entry that is not an access log
// entry (an applog record) with the fallback encoder, json (the
// default) and console:
//
//	go test -run '^$' -bench AccessFallback -benchmem ./module/encoders/access
func BenchmarkAccessFallback(b *testing.B) {
	ent := zapcore.Entry{Level: zapcore.WarnLevel, Time: time.Date(2026, time.November, 21, 10, 0, 0, 2_000_000, time.UTC),
		LoggerName: "applog.shop.cart", Message: "payment provider answered 502 after 1.2s; retrying with the backup gateway (attempt 2 of 3)"}
	fields := []zapcore.Field{
		zap.String("app", "shop"), zap.String("host", "10.0.0.9"), zap.String("logger", "shop.cart.pay"),
		zap.String("level_name", "WARNING"), zap.Int("level_no", 30), zap.String("facility", "cart"),
		zap.String("pathname", "/srv/shop/cart/pay.py"), zap.Int("lineno", 214), zap.String("request_id", "6f1c2a9b8e"),
	}
	for _, bc := range []struct{ name, fallback string }{
		{"json", ""},
		{"console", `{"format":"console"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := &Encoder{}
			if bc.fallback != "" {
				e.FallbackRaw = json.RawMessage(bc.fallback)
			}
			enc := newTestEncoder(b, e, time.UTC)
			b.ReportAllocs()
			for b.Loop() {
				buf, err := enc.EncodeEntry(ent, fields)
				if err != nil {
					b.Fatal(err)
				}
				buf.Free()
			}
		})
	}
}

// TestBenchEncodersAgree checks that the benchmark compares like with
// like: the same entry, and lines that say the same thing.
func TestBenchEncodersAgree(t *testing.T) {
	ent, request, fields := benchEntry()
	encode := func(enc zapcore.Encoder) string {
		c := enc.Clone()
		request.AddTo(c)
		buf, err := c.EncodeEntry(ent, fields)
		if err != nil {
			t.Fatal(err)
		}
		defer buf.Free()
		return buf.String()
	}
	common := encode(newTestEncoder(t, &Encoder{Preset: "common"}, time.UTC))
	combined := encode(newTestEncoder(t, &Encoder{Preset: "combined"}, time.UTC))
	transform := encode(newTransformCommonLog())
	if want := `203.0.113.9 - - [21/Nov/2026:09:59:59 +0000] "GET /api/v1/products/42?lang=en&ref=home HTTP/1.1" 200 5120` + "\n"; common != want {
		t.Errorf("access common:\n got %q\nwant %q", common, want)
	}
	if want := strings.TrimSuffix(common, "\n") + ` "https://shop.example.com/products?page=2" "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"` + "\n"; combined != want {
		t.Errorf("access combined:\n got %q\nwant %q", combined, want)
	}
	// transform-encoder logs the time the entry was logged, not when the
	// request arrived (4.312ms earlier, in the previous second).
	if want := `203.0.113.9 - - [21/Nov/2026:10:00:00 +0000] "GET /api/v1/products/42?lang=en&ref=home HTTP/1.1" 200 5120` + "\n"; transform != want {
		t.Errorf("transform emulation:\n got %q\nwant %q", transform, want)
	}
}

// transformCommonLog emulates caddyserver/transform-encoder's
// TransformEncoder (formatencoder.go) with the {common_log} template:
// the plugin is not in this module's dependency graph and cannot be
// fetched here, so its EncodeEntry is reproduced step by step: encode
// the entry with Caddy's JSON encoder (time format common_log), look up
// each placeholder of the template in the JSON line through a
// caddy.Replacer, where the plugin calls buger/jsonparser.Get (here
// jsonGet, a scanner that likewise finds a key path without decoding),
// then replace `\"` with `"` and add the newline.
type transformCommonLog struct {
	zapcore.Encoder
	template string
}

func newTransformCommonLog() transformCommonLog {
	cfg := logging.LogEncoderConfig{TimeFormat: "02/Jan/2006:15:04:05 -0700"}
	return transformCommonLog{
		Encoder:  zapcore.NewJSONEncoder(cfg.ZapcoreEncoderConfig()),
		template: `{request>client_ip} - {user_id} [{ts}] "{request>method} {request>uri} {request>proto}" {status} {size}`,
	}
}

func (te transformCommonLog) Clone() zapcore.Encoder {
	return transformCommonLog{Encoder: te.Encoder.Clone(), template: te.template}
}

func (te transformCommonLog) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	repl := caddy.NewReplacer()
	buf, err := te.Encoder.EncodeEntry(ent, fields)
	if err != nil {
		return buf, err
	}
	repl.Map(func(key string) (any, bool) {
		if strings.Contains(key, ":") {
			for _, slice := range strings.Split(key, ":") {
				if val, found := transformValue(buf, slice); found {
					return val, found
				}
			}
			return nil, false
		}
		return transformValue(buf, key)
	})
	out := repl.ReplaceAll(te.template, "-")
	buf.Reset()
	buf.AppendString(strings.Replace(out, `\"`, `"`, -1))
	if !strings.HasSuffix(out, "\n") {
		buf.AppendByte('\n')
	}
	return buf, nil
}

// transformValue is the plugin's getValue: the raw bytes of the value
// (a string without its quotes, still escaped).
func transformValue(buf *buffer.Buffer, key string) (any, bool) {
	path := strings.Split(key, ">")
	value, ok := jsonGet(buf.Bytes(), path)
	if !ok {
		return nil, false
	}
	return value, true
}

// jsonGet returns the value at path in the JSON object data, scanning
// the bytes as jsonparser.Get does: strings come back without their
// quotes, still escaped, other values as they are.
func jsonGet(data []byte, path []string) ([]byte, bool) {
	i := skipSpace(data, 0)
	for depth := 0; depth < len(path); depth++ {
		if i >= len(data) || data[i] != '{' {
			return nil, false
		}
		i++
		found := false
		for {
			i = skipSpace(data, i)
			if i >= len(data) || data[i] == '}' {
				return nil, false
			}
			if data[i] == ',' {
				i++
				continue
			}
			keyEnd := skipString(data, i)
			if keyEnd < 0 {
				return nil, false
			}
			key := data[i+1 : keyEnd-1]
			i = skipSpace(data, keyEnd)
			if i >= len(data) || data[i] != ':' {
				return nil, false
			}
			i = skipSpace(data, i+1)
			if string(key) == path[depth] {
				found = true
				break
			}
			if i = skipValue(data, i); i < 0 {
				return nil, false
			}
		}
		if !found {
			return nil, false
		}
	}
	end := skipValue(data, i)
	if end < 0 {
		return nil, false
	}
	if data[i] == '"' {
		return data[i+1 : end-1], true
	}
	return data[i:end], true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at data[i].
func skipString(data []byte, i int) int {
	if i >= len(data) || data[i] != '"' {
		return -1
	}
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the value starting at data[i].
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return -1
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				if i = skipString(data, i); i < 0 {
					return -1
				}
				i--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	for ; i < len(data); i++ {
		switch data[i] {
		case ',', '}', ']', ' ', '\n', '\t', '\r':
			return i
		}
	}
	return i
}

// BenchmarkAccessWith measures what each log a request's access logger
// is teed to pays for it, through zap's ioCore as Caddy builds it:
// With (clone the encoder, add Caddy's request field), which Caddy
// v2.11 does for every matching log whether or not it takes the entry,
// and With followed by writing the entry, which the log that takes it
// adds. Caddy's json encoder is the comparison: its With marshals the
// request at once.
//
//	go test -run '^$' -bench AccessWith -benchmem ./module/encoders/access
func BenchmarkAccessWith(b *testing.B) {
	ent, request, fields := benchEntry()
	jsonEnc := caddyJSON(b)
	with := []zapcore.Field{request}
	for _, bc := range []struct {
		name string
		enc  zapcore.Encoder
	}{
		{"access_combined", newTestEncoder(b, &Encoder{Preset: "combined"}, time.UTC)},
		{"json", jsonEnc},
	} {
		core := zapcore.NewCore(bc.enc, zapcore.AddSync(io.Discard), zapcore.DebugLevel)
		b.Run(bc.name+"/with", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = core.With(with)
			}
		})
		b.Run(bc.name+"/with_and_write", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := core.With(with).Write(ent, fields); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

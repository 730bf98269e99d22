package access

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// newTestEncoder provisions e with times shown in loc.
func newTestEncoder(t testing.TB, e *Encoder, loc *time.Location) *Encoder {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := e.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	if loc != nil {
		e.c.loc = loc
	}
	return e
}

// accessLog describes one request as Caddy's server logs it.
type accessLog struct {
	req         *http.Request
	clientIP    string
	user        string
	status      int
	size        int
	bytesRead   int
	respHeaders http.Header
	duration    time.Duration
	end         time.Time
	logger      string      // default http.log.access.log0
	extra       []zap.Field // log_append fields
	redact      bool        // Caddy's default: no log_credentials
	wrap        func(zapcore.Encoder) zapcore.Encoder
}

// encodeAccess logs l through a zap logger over enc, the way Caddy's
// server does (modules/caddyhttp/server.go): the request added lazily
// with WithLazy, the response fields with the entry; it returns what
// the core wrote.
func encodeAccess(t testing.TB, enc zapcore.Encoder, l accessLog) string {
	t.Helper()
	var out syncBuffer
	if l.wrap != nil {
		enc = l.wrap(enc)
	}
	core := zapcore.NewCore(enc, &out, zapcore.DebugLevel)
	logger := zap.New(core, zap.WithClock(fixedClock(l.end)))
	name := l.logger
	if name == "" {
		name = "http.log.access.log0"
	}
	req := l.req
	if l.clientIP != "" {
		req = req.WithContext(context.WithValue(req.Context(), caddyhttp.VarsCtxKey,
			map[string]any{caddyhttp.ClientIPVarKey: l.clientIP}))
	}
	acc := logger.Named(name).WithLazy(zap.Object("request", caddyhttp.LoggableHTTPRequest{
		Request: req, ShouldLogCredentials: !l.redact,
	}))
	fields := []zap.Field{
		zap.Int("bytes_read", l.bytesRead),
		zap.String("user_id", l.user),
		zap.Duration("duration", l.duration),
		zap.Int("size", l.size),
		zap.Int("status", l.status),
		zap.Object("resp_headers", caddyhttp.LoggableHTTPHeader{Header: l.respHeaders, ShouldLogCredentials: !l.redact}),
	}
	acc.Info("handled request", append(fields, l.extra...)...)
	return out.String()
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time                         { return time.Time(c) }
func (c fixedClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Sync() error { return nil }

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

package syslog

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// benchRecord is an applog record as the app emits it: a message and the
// fields the syslog encoder reads (app, host, level_no) among others.
func benchRecord() (zapcore.Entry, []zapcore.Field) {
	ent := zapcore.Entry{Level: zapcore.WarnLevel, Time: entryTime, LoggerName: "applog.shop.cart",
		Message: "payment provider answered 502 after 1.2s; retrying with the backup gateway (attempt 2 of 3)"}
	fields := []zapcore.Field{
		zap.String("app", "shop"), zap.String("host", "10.0.0.9"), zap.String("logger", "shop.cart.pay"),
		zap.String("level_name", "WARNING"), zap.Int("level_no", 30), zap.String("facility", "cart"),
		zap.String("pathname", "/srv/shop/cart/pay.py"), zap.Int("lineno", 214), zap.String("request_id", "6f1c2a9b8e"),
	}
	return ent, fields
}

// BenchmarkSyslogEncoder encodes one record with the syslog encoder
// wrapping json (the default) and console:
//
//	go test -run '^$' -bench SyslogEncoder -benchmem ./writers/syslog
func BenchmarkSyslogEncoder(b *testing.B) {
	ent, fields := benchRecord()
	for _, bc := range []struct{ name, wrap string }{
		{"wrap_json", ""},
		{"wrap_console", `{"format":"console"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := &Encoder{ProcID: "42", Hostname: "web1"}
			if bc.wrap != "" {
				e.WrappedRaw = json.RawMessage(bc.wrap)
			}
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			if err := e.Provision(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				buf, err := e.EncodeEntry(ent, fields)
				if err != nil {
					b.Fatal(err)
				}
				buf.Free()
			}
		})
	}
}

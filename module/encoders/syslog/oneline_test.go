package syslog

import (
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-applog/caddy-applog/internal/oneline/onelinetest"
)

// A record that tries to forge lines of other apps and hosts through
// `wrap console` (which writes the message and logger name raw) stays
// on its own line, its control characters escaped.
func TestEncoderWrapConsoleOneLine(t *testing.T) {
	for _, rfc := range []string{"rfc5424", "rfc3164"} {
		e := newEncoder(t, &Encoder{RFC: rfc, ProcID: "42", Hostname: "web1", WrappedRaw: json.RawMessage(`{"format":"console","time_format":"wall"}`)})
		ent := zapcore.Entry{Level: zapcore.InfoLevel, Time: entryTime, LoggerName: "applog.shop\n<11>1 x",
			Message: "ok\n<14>1 2026-11-22T01:02:03Z db1 bank 7 - - forged line\r\x00\x1b[31mred\u009b0m\u2028sep\xff", Stack: "goroutine 1\n\tmain.go:1"}
		buf, err := e.EncodeEntry(ent, []zapcore.Field{zap.String("app", "shop"), zap.String("note", "a\nb")})
		if err != nil {
			t.Fatal(err)
		}
		got := buf.String()
		buf.Free()
		onelinetest.Check(t, got, true)
		// Console's default colour codes would be escaped: it writes
		// plain level names instead.
		for _, want := range []string{"\tINFO\t", `applog.shop\n<11>1 x`, `ok\n<14>1 2026-11-22T01:02:03Z db1 bank 7 - - forged line\r\u0000\u001b[31mred\u009b0m\u2028sep\ufffd`, `\ngoroutine 1\n` + "\tmain.go:1\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("%s: %q lacks %q", rfc, got, want)
			}
		}
	}
}

// With json (the default) the escapes keep the JSON valid and its
// values the record's: DEL, C1 and U+2028, which Caddy's json encoder
// writes raw, come out as \u escapes.
func TestEncoderWrapJSONOneLine(t *testing.T) {
	e := newEncoder(t, &Encoder{ProcID: "42", Hostname: "web1"})
	msg := "a\nb\x7f\u0085\u2029\x1b[0m"
	buf, err := e.EncodeEntry(zapcore.Entry{Level: zapcore.InfoLevel, Time: entryTime, LoggerName: "applog.shop", Message: msg}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	buf.Free()
	onelinetest.Check(t, got, true)
	_, js, _ := strings.Cut(got, " - - ")
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatalf("%q: %v", js, err)
	}
	if m["msg"] != msg {
		t.Fatalf("msg %q, want %q", m["msg"], msg)
	}
	if !strings.Contains(js, `"msg":"a\nb\u007f\u0085\u2029\u001b[0m"`) {
		t.Fatalf("%q", js)
	}
}

// FuzzEncoderOneLine: any entry, through json or console, in either
// header format, is exactly one line without raw control characters.
func FuzzEncoderOneLine(f *testing.F) {
	f.Add("hi", "applog.shop", "v", "", uint8(0))
	f.Add("\n<14>1 - forged", "a\rb", "\x00\x1b[31m", "stack\n", uint8(1))
	f.Add("\u2028\u009b\xff", "\x7f", "\t", "", uint8(3))
	encs := make([]*Encoder, 4)
	for i := range encs {
		e := &Encoder{ProcID: "1", Hostname: "h"}
		if i&1 == 1 {
			e.WrappedRaw = json.RawMessage(`{"format":"console"}`)
		}
		if i&2 == 2 {
			e.RFC = "rfc3164"
		}
		encs[i] = newEncoder(f, e)
	}
	f.Fuzz(func(t *testing.T, msg, logger, value, stack string, which uint8) {
		e := encs[int(which)%len(encs)]
		ent := zapcore.Entry{Level: zapcore.WarnLevel, Time: entryTime, LoggerName: logger, Message: msg, Stack: stack,
			Caller: zapcore.NewEntryCaller(0, value, 3, true)}
		buf, err := e.EncodeEntry(ent, []zapcore.Field{zap.String("app", value), zap.String("host", value),
			zap.String(value, value), zap.ByteString("b", []byte(value)), zap.Any("any", map[string]string{value: msg})})
		if err != nil {
			t.Fatal(err)
		}
		onelinetest.Check(t, buf.String(), true)
		buf.Free()
	})
}

package oneline

import (
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-applog/caddy-applog/internal/oneline/onelinetest"
)

func escape(s string) string {
	buf := pool.Get()
	defer buf.Free()
	Append(buf, []byte(s))
	return buf.String()
}

func TestAppend(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "",
		"plain text, tabs\tand \\ kept": "plain text, tabs\tand \\ kept",
		"a\nb\r\nc":                     `a\nb\r\nc`,
		"\n<14>1 - forged line":         `\n<14>1 - forged line`,
		"nul\x00 esc\x1b[31m red":       `nul\u0000 esc\u001b[31m red`,
		"bell\a del\x7f":                `bell\u0007 del\u007f`,
		"c1 \u009b31m \u0085 nel":       `c1 \u009b31m \u0085 nel`,
		"sep\u2028line\u2029para":       `sep\u2028line\u2029para`,
		"héllo wörld ✓ 日本 🙂 \u00a0\ufffd":  "héllo wörld ✓ 日本 🙂 \u00a0\ufffd",
		"latin1 caf\xe9 \x9b cut \xe2\x80": `latin1 caf\ufffd \ufffd cut \ufffd\ufffd`,
	} {
		if got := escape(in); got != want {
			t.Errorf("Append(%q) = %q, want %q", in, got, want)
		}
		if clean := Clean([]byte(in)); clean != (escape(in) == in) {
			t.Errorf("Clean(%q) = %v", in, clean)
		}
	}
}

func TestLine(t *testing.T) {
	for in, want := range map[string]string{
		"one\n":           "one\n",
		"one\r\n":         "one\n",
		"no ending":       "no ending\n",
		"a\nb\n":          "a\\nb\n",
		"trailing\n\n":    "trailing\\n\n",
		"stack\n\tat x\n": "stack\\n\tat x\n",
	} {
		buf := pool.Get()
		buf.AppendString(in)
		out := Line(buf)
		if got := out.String(); got != want {
			t.Errorf("Line(%q) = %q, want %q", in, got, want)
		}
		out.Free()
	}
}

// FuzzLine: whatever an encoder wrote, Line makes it one clean line;
// clean input comes back unchanged; and JSON from Caddy's (zap's) json
// encoder stays valid JSON with the same values.
func FuzzLine(f *testing.F) {
	for _, s := range []string{"", "x", "a\nb", "\x1b[31m", "\u2028", "\xff\xfe", "caf\xe9", "\u009b", "\\u0000", "\r\n", "\t"} {
		f.Add(s)
	}
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg", LineEnding: "\n"})
	f.Fuzz(func(t *testing.T, s string) {
		buf := buffer.NewPool().Get()
		buf.AppendString(s)
		buf.AppendByte('\n')
		out := Line(buf)
		onelinetest.Check(t, out.String(), true)
		if Clean([]byte(s)) && out.String() != s+"\n" {
			t.Fatalf("clean %q changed to %q", s, out.String())
		}
		out.Free()

		jb, err := enc.EncodeEntry(zapcore.Entry{Message: s}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := jb.String()
		line := Line(jb)
		onelinetest.Check(t, line.String(), true)
		var got, orig map[string]any
		if err := json.Unmarshal(line.Bytes(), &got); err != nil {
			t.Fatalf("%q is no longer JSON: %v", line.String(), err)
		}
		if err := json.Unmarshal([]byte(want), &orig); err != nil {
			t.Fatal(err)
		}
		if got["msg"] != orig["msg"] {
			t.Fatalf("value changed: %q, was %q", got["msg"], orig["msg"])
		}
		line.Free()
	})
}

func BenchmarkLine(b *testing.B) {
	const entry = `{"level":"warn","ts":1795309323.456789,"logger":"applog.shop.cart","msg":"payment provider answered 502 after 1.2s; retrying","app":"shop","host":"10.0.0.9"}` + "\n"
	for _, bc := range []struct{ name, s string }{
		{"clean_ascii", entry},
		{"clean_utf8", strings.Replace(entry, "payment", "paiement réessayé ✓", 1)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := []byte(strings.TrimSuffix(bc.s, "\n"))
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !Clean(body) {
					b.Fatal("not clean")
				}
			}
		})
	}
}

func TestUncolor(t *testing.T) {
	for in, want := range map[string]string{
		`{"format":"console"}`:                            `{"format":"console","level_format":"upper"}`,
		`{"format":"console","time_format":"wall"}`:       `{"format":"console","level_format":"upper","time_format":"wall"}`,
		`{"format":"console","level_format":"color"}`:     `{"format":"console","level_format":"color"}`,
		`{"format":"json"}`:                               `{"format":"json"}`,
		`{"format":"filter","wrap":{"format":"console"}}`: `{"format":"filter","wrap":{"format":"console"}}`,
		`not json`: `not json`,
	} {
		if got := string(Uncolor([]byte(in))); got != want {
			t.Errorf("Uncolor(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestPlain checks the 8-byte test against the byte table, for each byte
// value in each position.
func TestPlain(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			want := c >= 0x20 && c < 0x7f
			if got := plain(b, 0); got != want {
				t.Fatalf("plain(%q) = %v", b, got)
			}
		}
	}
	if plain([]byte("short"), 0) {
		t.Fatal("plain past the end")
	}
}

// Package oneline keeps an encoded log entry on one line. The text
// encoders this project wraps (zap's console encoder, or any other a
// configuration names) write a record's message and logger name as they
// are, so a record could end its line early and forge the next one, or
// reach a terminal as an escape sequence. Escape takes what such an
// encoder wrote and escapes what it left raw, the way JSON does:
//
//	\n \r            line feed and carriage return
//	\u00XX           the other C0 controls (U+0000-U+001F but tab), DEL
//	                 (U+007F) and the C1 controls (U+0080-U+009F, ESC's
//	                 8-bit twins such as CSI U+009B)
//	\u2028 \u2029    the line and paragraph separators, which some
//	                 editors and JavaScript read as line breaks
//	\ufffd           each byte that is not part of valid UTF-8
//
// Tab is kept, because the console encoder separates its columns with
// it; everything else (backslashes, quotes, any other Unicode text) is
// left alone. JSON thus stays valid JSON with the same values, and
// Caddy's json encoder, which already escapes C0 controls and invalid
// UTF-8 that way, only gains escapes for DEL, C1 and the separators.
package oneline

import (
	"encoding/binary"
	"encoding/json"
	"unicode/utf8"

	"go.uber.org/zap/buffer"
)

var pool = buffer.NewPool()

// class says, per byte, what Escape must do: 0 keep, 1 escape, 2 decode
// the UTF-8 sequence it starts to decide.
var class = func() (t [256]uint8) {
	for c := range 0x20 {
		t[c] = 1
	}
	t['\t'] = 0
	t[0x7f] = 1
	for c := 0x80; c < 0x100; c++ {
		t[c] = 2
	}
	return t
}()

// escapeRune reports whether the valid rune r must be escaped.
func escapeRune(r rune) bool {
	return r >= 0x80 && r <= 0x9f || r == 0x2028 || r == 0x2029
}

// Masks for testing 8 bytes at once.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain reports whether the 8 bytes at b[i:] exist and are all printable
// ASCII (0x20-0x7e), the usual case, which the byte loops then skip.
func plain(b []byte, i int) bool {
	if i+8 > len(b) {
		return false
	}
	w := binary.LittleEndian.Uint64(b[i:])
	// A byte below 0x20 borrows into its high bit, which w lacks; a
	// byte of 0x80 or more has it; a DEL becomes zero in w^DELs.
	del := w ^ 0x7f*ones
	return (w|(w-0x20*ones)&^w|(del-ones)&^del)&highs == 0
}

// Clean reports whether b holds nothing that Append would escape.
func Clean(b []byte) bool {
	for i := 0; i < len(b); {
		if plain(b, i) {
			i += 8
			continue
		}
		switch class[b[i]] {
		case 0:
			i++
		case 1:
			return false
		default:
			r, size := utf8.DecodeRune(b[i:])
			if size == 1 || escapeRune(r) {
				return false
			}
			i += size
		}
	}
	return true
}

// Append appends b to buf with control characters, line separators and
// invalid UTF-8 escaped (see the package documentation).
func Append(buf *buffer.Buffer, b []byte) {
	last := 0
	for i := 0; i < len(b); {
		if plain(b, i) {
			i += 8
			continue
		}
		c := b[i]
		switch class[c] {
		case 0:
			i++
			continue
		case 1:
			buf.Write(b[last:i])
			switch c {
			case '\n':
				buf.AppendString(`\n`)
			case '\r':
				buf.AppendString(`\r`)
			default:
				appendU(buf, rune(c))
			}
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if size > 1 && !escapeRune(r) {
				i += size
				continue
			}
			buf.Write(b[last:i])
			if size == 1 {
				// A byte that does not start valid UTF-8 (DecodeRune
				// returns size 1 only for those, at this point).
				buf.AppendString(`\ufffd`)
			} else {
				appendU(buf, r)
			}
			i += size
		}
		last = i
	}
	buf.Write(b[last:])
}

// Escape returns b escaped by Append: b itself when it is clean, else a
// new slice.
func Escape(b []byte) []byte {
	if Clean(b) {
		return b
	}
	buf := pool.Get()
	defer buf.Free()
	Append(buf, b)
	return append([]byte(nil), buf.Bytes()...)
}

// appendU appends r (at most U+FFFF) as \uXXXX.
func appendU(buf *buffer.Buffer, r rune) {
	const hex = "0123456789abcdef"
	buf.AppendString(`\u`)
	buf.AppendByte(hex[r>>12&0xf])
	buf.AppendByte(hex[r>>8&0xf])
	buf.AppendByte(hex[r>>4&0xf])
	buf.AppendByte(hex[r&0xf])
}

// TrimEnding returns b without its line ending: one "\n", with the "\r"
// before it if there is one.
func TrimEnding(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// Line returns an encoder's output as exactly one line: its content
// escaped by Append, ended by one "\n" in place of the encoder's line
// ending. It returns buf itself when there is nothing to change, and
// otherwise a new buffer, freeing buf.
func Line(buf *buffer.Buffer) *buffer.Buffer {
	b := buf.Bytes()
	body := TrimEnding(b)
	if len(body) == len(b)-1 && Clean(body) {
		return buf
	}
	out := pool.Get()
	Append(out, body)
	out.AppendByte('\n')
	buf.Free()
	return out
}

// Uncolor returns the configuration of a wrapped encoder, raw, with
// `"level_format":"upper"` added when it is Caddy's console encoder
// without a level_format: its default, colour, wraps each level in
// terminal escape codes, which Line would escape into noise. Any other
// configuration comes back as it is.
func Uncolor(raw json.RawMessage) json.RawMessage {
	var cfg map[string]json.RawMessage
	if json.Unmarshal(raw, &cfg) != nil || string(cfg["format"]) != `"console"` {
		return raw
	}
	if _, ok := cfg["level_format"]; ok {
		return raw
	}
	cfg["level_format"] = json.RawMessage(`"upper"`)
	out, err := json.Marshal(cfg)
	if err != nil {
		return raw
	}
	return out
}

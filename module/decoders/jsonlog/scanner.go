package jsonlog

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// scanner walks a JSON body without building generic maps: top-level
// keys of a record become typed values, nested documents are copied.
type scanner struct {
	buf  string
	pos  int
	lim  Limits
	keys map[string]string // interned keys

	firstLine int    // the line number of buf[0] in the body
	unit      string // what buf is, for errors: "body" or "line"
}

// maxInternedKeys bounds the key cache of one body.
const maxInternedKeys = 256

// key decodes an object key, interned: a batch repeats the same keys.
func (s *scanner) key() (string, error) {
	k, err := s.str()
	if err != nil {
		return "", err
	}
	if ik, ok := s.keys[k]; ok {
		return ik, nil
	}
	if len(s.keys) < maxInternedKeys {
		s.keys[k] = k
	}
	return k, nil
}

func (s *scanner) peek() byte {
	if s.pos < len(s.buf) {
		return s.buf[s.pos]
	}
	return 0
}

func (s *scanner) skipWS() {
	for s.pos < len(s.buf) && isSpace(s.buf[s.pos]) {
		s.pos++
	}
}

// errf reports a syntax error at s.pos, with the line it is on.
func (s *scanner) errf(format string, args ...any) error {
	return s.errAt(s.pos, format, args...)
}

// errAfter reports that something is missing after the last token: the
// error is on that token's line, not on the line of whatever follows
// the white space (a broken line 2 of NDJSON is line 2, not 3).
func (s *scanner) errAfter(format string, args ...any) error {
	p := min(s.pos, len(s.buf))
	for p > 0 && isSpace(s.buf[p-1]) {
		p--
	}
	if s.pos >= len(s.buf) {
		format = "unexpected end of " + s.unit + ", " + format
	}
	return s.errAt(p, format, args...)
}

func (s *scanner) errAt(pos int, format string, args ...any) error {
	line := s.firstLine + strings.Count(s.buf[:min(pos, len(s.buf))], "\n")
	return fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...))
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// value decodes the value at s.pos. depth counts enclosing containers.
func (s *scanner) value(depth int) (intake.Value, error) {
	switch c := s.peek(); {
	case c == '"':
		str, err := s.str()
		return intake.String(str), err
	case c == '{' || c == '[':
		start := s.pos
		if err := s.skipContainer(depth); err != nil {
			return intake.Value{}, err
		}
		doc := s.buf[start:s.pos]
		if !strings.ContainsAny(doc, " \t\r\n") {
			return intake.JSON(validUTF8(doc)), nil
		}
		var out bytes.Buffer
		if err := compact(&out, doc); err != nil {
			return intake.Value{}, s.errf("%v", err)
		}
		return intake.JSON(validString(out.Bytes())), nil
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return intake.Bool(true), s.literal("true")
	case c == 'f':
		return intake.Bool(false), s.literal("false")
	case c == 'n':
		return intake.Null(), s.literal("null")
	case c == 0 && s.pos >= len(s.buf):
		return intake.Value{}, s.errAfter("expected a value")
	default:
		return intake.Value{}, s.errf("unexpected character %q", c)
	}
}

func (s *scanner) literal(word string) error {
	if !strings.HasPrefix(s.buf[s.pos:], word) {
		return s.errf("invalid literal, expected %s", word)
	}
	s.pos += len(word)
	return nil
}

// number decodes a JSON number: an int64 when it is an integer that fits,
// a float64 when it is finite, else the literal kept as a JSON document
// so that huge numbers pass through unchanged instead of turning into Inf.
func (s *scanner) number() (intake.Value, error) {
	start := s.pos
	if s.peek() == '-' {
		s.pos++
	}
	if !isDigit(s.peek()) {
		return intake.Value{}, s.errf("invalid number")
	}
	if s.peek() == '0' {
		s.pos++
	} else {
		for isDigit(s.peek()) {
			s.pos++
		}
	}
	isInt := true
	if s.peek() == '.' {
		isInt = false
		s.pos++
		if !isDigit(s.peek()) {
			return intake.Value{}, s.errf("invalid number")
		}
		for isDigit(s.peek()) {
			s.pos++
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		isInt = false
		s.pos++
		if c := s.peek(); c == '+' || c == '-' {
			s.pos++
		}
		if !isDigit(s.peek()) {
			return intake.Value{}, s.errf("invalid number")
		}
		for isDigit(s.peek()) {
			s.pos++
		}
	}
	lit := s.buf[start:s.pos]
	if isInt {
		if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return intake.Int(n), nil
		}
		return intake.JSON(lit), nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil { // out of range
		return intake.JSON(lit), nil
	}
	return intake.Float(f), nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// str decodes the string at s.pos. Invalid UTF-8 and lone surrogates
// become U+FFFD, as encoding/json does.
func (s *scanner) str() (string, error) {
	if s.peek() != '"' {
		return "", s.errAfter("expected a string")
	}
	s.pos++
	start := s.pos
	// Fast path: no escapes, valid UTF-8.
	for s.pos < len(s.buf) {
		c := s.buf[s.pos]
		if c == '"' {
			raw := s.buf[start:s.pos]
			s.pos++
			return validUTF8(raw), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", s.errf("control character in string")
		}
		s.pos++
	}
	out := make([]byte, 0, s.pos-start+16)
	out = append(out, s.buf[start:s.pos]...)
	for s.pos < len(s.buf) {
		c := s.buf[s.pos]
		switch {
		case c == '"':
			s.pos++
			return validString(out), nil
		case c < 0x20:
			return "", s.errf("control character in string")
		case c != '\\':
			out = append(out, c)
			s.pos++
			continue
		}
		s.pos++
		switch e := s.peek(); e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4(s.pos + 1)
			if !ok {
				return "", s.errf("invalid \\u escape in string")
			}
			s.pos += 4
			if utf16IsSurrogate(r) {
				if r2, ok := s.hex4(s.pos + 3); ok && s.buf[s.pos+1] == '\\' && s.buf[s.pos+2] == 'u' {
					if dec := utf16Decode(r, r2); dec != utf8.RuneError {
						s.pos += 6
						r = dec
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", s.errf("invalid escape in string")
		}
		s.pos++
	}
	return "", s.errf("unterminated string")
}

func (s *scanner) hex4(at int) (rune, bool) {
	if at+4 > len(s.buf) {
		return 0, false
	}
	var r rune
	for _, c := range s.buf[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func utf16IsSurrogate(r rune) bool { return r >= 0xd800 && r < 0xe000 }

func utf16Decode(r1, r2 rune) rune {
	if r1 >= 0xd800 && r1 < 0xdc00 && r2 >= 0xdc00 && r2 < 0xe000 {
		return (r1-0xd800)<<10 | (r2 - 0xdc00) + 0x10000
	}
	return utf8.RuneError
}

// skipContainer moves past the object or array at s.pos, validating its
// syntax and refusing nesting deeper than the limit.
func (s *scanner) skipContainer(depth int) error {
	if depth > s.lim.MaxDepth {
		return s.errf("nesting deeper than %d", s.lim.MaxDepth)
	}
	open := s.buf[s.pos]
	closing := byte(']')
	if open == '{' {
		closing = '}'
	}
	s.pos++
	s.skipWS()
	if s.peek() == closing {
		s.pos++
		return nil
	}
	for {
		s.skipWS()
		if open == '{' {
			if _, err := s.str(); err != nil {
				return err
			}
			s.skipWS()
			if s.peek() != ':' {
				return s.errAfter("expected ':' in object")
			}
			s.pos++
			s.skipWS()
		}
		var err error
		if c := s.peek(); c == '{' || c == '[' {
			err = s.skipContainer(depth + 1)
		} else {
			_, err = s.value(depth)
		}
		if err != nil {
			return err
		}
		s.skipWS()
		switch s.peek() {
		case ',':
			s.pos++
		case closing:
			s.pos++
			return nil
		default:
			return s.errAfter("expected ',' or '%c'", closing)
		}
	}
}

// compact removes insignificant white space from a document already
// validated by skipContainer (json.Compact would validate it again).
func compact(out *bytes.Buffer, doc string) error {
	inStr := false
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		if inStr {
			out.WriteByte(c)
			switch c {
			case '\\':
				if i+1 < len(doc) {
					i++
					out.WriteByte(doc[i])
				}
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\r', '\n':
		case '"':
			inStr = true
			out.WriteByte(c)
		default:
			out.WriteByte(c)
		}
	}
	if inStr {
		return fmt.Errorf("unterminated string")
	}
	return nil
}

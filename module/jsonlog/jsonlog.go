// Package jsonlog decodes structured log records sent as JSON (one object,
// an array of objects, or newline-delimited JSON) and plain text lines.
//
// It understands the key names common loggers use, so Go's log/slog
// JSONHandler, zap, logrus and python-json-logger output work unchanged:
//
//	message  "message", else "msg"
//	level    "level", "levelname", "severity" (names or Python numbers), "levelno"
//	time     "time", "timestamp", "ts", "created", "@timestamp"
//	logger   "logger", "logger_name", "name"
//	app      "app"        (routing key: which application)
//	facility "facility"   (routing key: which sub-module; default: the logger)
//
// Every other key is kept as an attribute, in arrival order, with nested
// objects and arrays copied verbatim (compacted to one line). A message
// that is not a string is kept as its JSON text; a level name that is
// not known (and no number beside it) is an error, not INFO.
package jsonlog

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// Limits bound what one request may make the decoder do.
type Limits struct {
	// MaxRecords is the most records one body may hold.
	MaxRecords int
	// MaxFields is the most top-level keys one record may have.
	MaxFields int
	// MaxDepth is the deepest nesting of objects and arrays allowed.
	MaxDepth int
}

// DefaultLimits are used for zero fields of Limits.
var DefaultLimits = Limits{MaxRecords: 10000, MaxFields: 1000, MaxDepth: 64}

func (l Limits) withDefaults() Limits {
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultLimits.MaxRecords
	}
	if l.MaxFields <= 0 {
		l.MaxFields = DefaultLimits.MaxFields
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	return l
}

// Decode parses body as a stream of JSON values separated by white space:
// a single object, an array of objects, or NDJSON (one object per line)
// all decode the same way. Records without a time get now. Errors name
// the line they were found on; a missing token is blamed on the line of
// the token before it.
func Decode(body []byte, lim Limits, now time.Time) ([]intake.Record, error) {
	s := newScanner(body, lim)
	recs, err := s.values(make([]intake.Record, 0, bytes.Count(body, []byte{'\n'})+1), now)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("no records in body")
	}
	return recs, nil
}

// DecodeLines parses body as NDJSON (JSON Lines): each line, ended by LF
// or CRLF, holds one object or an array of objects, and blank lines are
// skipped. A record cannot span lines, so an error always names the line
// that is wrong, counting every line of the body from 1.
func DecodeLines(body []byte, lim Limits, now time.Time) ([]intake.Record, error) {
	s := newScanner(body, lim)
	s.unit = "line"
	whole := s.buf
	recs := make([]intake.Record, 0, bytes.Count(body, []byte{'\n'})+1)
	var err error
	for n := 1; whole != ""; n++ {
		s.buf, whole, _ = strings.Cut(whole, "\n")
		s.pos, s.firstLine = 0, n
		if recs, err = s.values(recs, now); err != nil {
			return nil, err
		}
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("no records in body")
	}
	return recs, nil
}

func newScanner(body []byte, lim Limits) *scanner {
	// One copy of the body: every string without escapes is then a free
	// substring of it, and repeated keys are interned across records.
	return &scanner{buf: string(body), lim: lim.withDefaults(), keys: make(map[string]string), firstLine: 1, unit: "body"}
}

// values decodes the objects and arrays of objects in s.buf onto recs.
func (s *scanner) values(recs []intake.Record, now time.Time) ([]intake.Record, error) {
	var err error
	for {
		s.skipWS()
		if s.pos >= len(s.buf) {
			return recs, nil
		}
		switch s.buf[s.pos] {
		case '{':
			if recs, err = s.appendRecord(recs, now); err != nil {
				return nil, err
			}
		case '[':
			s.pos++
			s.skipWS()
			if s.peek() == ']' {
				s.pos++
				continue
			}
			for {
				s.skipWS()
				if s.peek() != '{' {
					if s.pos >= len(s.buf) {
						return nil, s.errAfter("expected an object in array")
					}
					return nil, s.errf("array elements must be objects")
				}
				if recs, err = s.appendRecord(recs, now); err != nil {
					return nil, err
				}
				s.skipWS()
				if s.peek() == ',' {
					s.pos++
					continue
				}
				if s.peek() == ']' {
					s.pos++
					break
				}
				return nil, s.errAfter("expected ',' or ']' in array")
			}
		default:
			return nil, s.errf("expected a JSON object or array")
		}
	}
}

// DecodeText makes one INFO record per non-empty line of body (LF or
// CRLF), stamped with now. Invalid UTF-8 is replaced, never rejected.
func DecodeText(body []byte, lim Limits, now time.Time) ([]intake.Record, error) {
	lim = lim.withDefaults()
	var recs []intake.Record
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if len(recs) >= lim.MaxRecords {
			return nil, fmt.Errorf("more than %d records in one body", lim.MaxRecords)
		}
		recs = append(recs, intake.Record{
			Time:      now,
			LevelNo:   intake.LevelInfo,
			LevelName: "INFO",
			Message:   validString(line),
			Wire:      len(line) + 1,
		})
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("no records in body")
	}
	return recs, nil
}

func validString(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}

// validUTF8 returns s, with invalid UTF-8 replaced.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// appendRecord decodes the object at s.pos onto recs, within the limit.
func (s *scanner) appendRecord(recs []intake.Record, now time.Time) ([]intake.Record, error) {
	if len(recs) >= s.lim.MaxRecords {
		return recs, s.errf("more than %d records in one body", s.lim.MaxRecords)
	}
	start := s.pos
	rec, err := s.record(now)
	if err != nil {
		return recs, err
	}
	rec.Wire = s.pos - start + 1 // with the newline or comma after it
	return append(recs, rec), nil
}

// record decodes one object at s.pos into a Record.
func (s *scanner) record(now time.Time) (intake.Record, error) {
	rec := intake.Record{Time: now}
	var (
		msg, message               string
		hasMsg, hasMessage         bool
		levelSet, timeOK, consumed bool
		badLevel                   string // a level name we do not know
		attrs                      = make([]intake.Attr, 0, 8)
		start                      = s.pos
	)
	s.pos++ // '{'
	s.skipWS()
	if s.peek() == '}' {
		s.pos++
		return rec, s.errf("empty record object")
	}
	for n := 0; ; n++ {
		if n >= s.lim.MaxFields {
			return rec, s.errf("more than %d fields in one record", s.lim.MaxFields)
		}
		s.skipWS()
		key, err := s.key()
		if err != nil {
			return rec, err
		}
		s.skipWS()
		if s.peek() != ':' {
			return rec, s.errAfter("expected ':' after key %q", key)
		}
		s.pos++
		s.skipWS()
		valStart := s.pos
		val, err := s.value(1)
		if err != nil {
			return rec, err
		}
		consumed = false
		switch key {
		case "message":
			if text, ok := s.messageText(val, valStart); ok && !hasMessage {
				message, hasMessage, consumed = text, true, true
			}
		case "msg":
			if text, ok := s.messageText(val, valStart); ok && !hasMsg {
				msg, hasMsg, consumed = text, true, true
			}
		case "level", "levelname", "severity", "levelno":
			if !levelSet {
				consumed = setLevel(&rec, key, val)
				levelSet = consumed
				if !consumed && val.Kind == intake.KindString && badLevel == "" {
					badLevel = val.Str
				}
			}
		case "time", "timestamp", "ts", "created", "@timestamp":
			if !timeOK {
				if t, ok := parseTime(val); ok {
					rec.Time, timeOK, consumed = t, true, true
				}
			}
		case "logger", "logger_name", "name":
			if rec.Logger == "" && val.Kind == intake.KindString {
				rec.Logger, consumed = val.Str, true
			}
		case "app":
			if val.Kind == intake.KindString {
				rec.App, consumed = val.Str, true
			}
		case "facility":
			if val.Kind == intake.KindString {
				rec.Facility, consumed = intake.FacilityFromLogger(val.Str), true
			}
		}
		if !consumed {
			attrs = append(attrs, intake.Attr{Key: key, Value: val})
		}
		s.skipWS()
		switch s.peek() {
		case ',':
			s.pos++
			continue
		case '}':
			s.pos++
		default:
			return rec, s.errAfter("expected ',' or '}' after value of %q", key)
		}
		break
	}
	switch {
	case hasMessage:
		rec.Message = message
		if hasMsg { // both present: "msg" is likely a template; keep it
			attrs = append(attrs, intake.Attr{Key: "msg", Value: intake.String(msg)})
		}
	case hasMsg:
		rec.Message = msg
	}
	if !levelSet {
		if badLevel != "" {
			// Taking it as INFO would hide an error as routine.
			return rec, s.errAt(start, "unknown level %q: %s", intake.Brief(badLevel), LevelHint)
		}
		rec.LevelNo, rec.LevelName = intake.LevelInfo, "INFO"
	}
	rec.Attrs = attrs
	return rec, nil
}

// LevelHint says which level names a record may give.
const LevelHint = "use a number on Python's scale (10 DEBUG ... 50 CRITICAL) or one of " +
	"debug, info, warning, error, critical (also trace, notice, warn, err, crit, fatal, alert, emerg, " +
	"\"Level 25\" and slog's INFO+2), in any case"

// messageText is the text of a message value: a string as it is, any
// other value but null as its JSON text (so {"a":1} is not lost), which
// for a number or literal is what the body holds from start on.
func (s *scanner) messageText(v intake.Value, start int) (string, bool) {
	switch v.Kind {
	case intake.KindString, intake.KindJSON:
		return v.Str, true
	case intake.KindNull:
		return "", false
	}
	return s.buf[start:s.pos], true
}

// setLevel reads a level attribute; it reports false (keep the key as an
// attribute) when the value is not a level we understand.
func setLevel(rec *intake.Record, key string, v intake.Value) bool {
	switch v.Kind {
	case intake.KindString:
		n, ok := intake.ParseLevel(v.Str)
		if !ok {
			return false
		}
		rec.LevelNo, rec.LevelName = n, v.Str
		return true
	case intake.KindInt:
		if v.Int < -1000 || v.Int > 1000 {
			return false
		}
		rec.LevelNo = int(v.Int)
		rec.LevelName = intake.LevelName(rec.LevelNo)
		return true
	}
	return false
}

// parseTime reads RFC 3339 strings and Unix timestamps. Numbers are
// seconds; implausibly large ones are taken as milliseconds, microseconds
// or nanoseconds (JavaScript and some Go loggers write those).
func parseTime(v intake.Value) (time.Time, bool) {
	switch v.Kind {
	case intake.KindString:
		t, err := time.Parse(time.RFC3339Nano, v.Str)
		return t, err == nil
	case intake.KindInt:
		n := v.Int
		switch {
		case n < 0:
			return time.Time{}, false
		case n < 1e11:
			return time.Unix(n, 0), true
		case n < 1e14:
			return time.UnixMilli(n), true
		case n < 1e17:
			return time.UnixMicro(n), true
		default:
			return time.Unix(0, n), true
		}
	case intake.KindFloat:
		f := v.Float
		if f < 0 || f >= 1e11 || f != f {
			return time.Time{}, false
		}
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9+0.5)), true
	}
	return time.Time{}, false
}

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

// Opening returns '{' or '[' when body starts, after JSON's white space,
// with an object or an array (what Decode reads, whatever type the
// sender said it was), and 0 otherwise.
func Opening(body []byte) byte {
	for _, c := range body {
		if !isSpace(c) {
			if c == '{' || c == '[' {
				return c
			}
			return 0
		}
	}
	return 0
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

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

package jsonlog

import (
	"time"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

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

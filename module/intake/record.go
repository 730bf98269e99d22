// Package intake holds what every door into the applog app shares: the
// Record a decoder produces, the Intake interface the app offers to
// handlers and receivers, level mapping, and errors that carry an HTTP
// status. Handlers and receivers depend on this package, never on each
// other or on the app itself.
package intake

import (
	"strconv"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Record is one log record on its way from a source to Caddy's logging.
// Decoders fill it from whatever arrived on the wire; the app resolves
// its facility, checks it against the facility's rules and emits it.
type Record struct {
	// Time is when the source says the record was created (Python's
	// `created`, a JSON `time`), or the arrival time when it says nothing.
	Time time.Time

	// LevelNo is the level on Python's scale (DEBUG 10 ... CRITICAL 50;
	// see ParseLevel for how other vocabularies map onto it).
	LevelNo int

	// LevelName is the level as the source named it ("WARNING", "warn",
	// "notice", "INFO+2"); kept verbatim in the emitted entry.
	LevelName string

	// Logger is the source's own logger name ("django.request").
	Logger string

	// Message is the final, rendered message.
	Message string

	// App is the application the record belongs to.
	App string

	// Facility is the dotted sub-module inside the app ("web.requests");
	// empty means the app root. Decoders set it only when the source
	// names one explicitly; otherwise it is derived from Logger.
	Facility string

	// Host is the network source of the record: the peer address, or the
	// client address Caddy resolved through trusted_proxies. Never a
	// value the record claims about itself.
	Host string

	// Attrs are the remaining attributes, in the order they arrived.
	Attrs []Attr

	// Wire is how many bytes the record arrived in: its frame, datagram,
	// line or share of a request body. The app bounds what the record
	// may encode to by it (see MaxAmplification), so no input can be
	// expanded into a larger entry. Zero means unknown: only the
	// facility's max_record_size applies.
	Wire int
}

// MaxAmplification bounds how many bytes of sender-supplied content
// (message, logger and level names, facility, attribute keys and values,
// as JSON-escaped) a record may encode to, per byte it arrived in.
const MaxAmplification = 3

// Attr is one named attribute of a record.
type Attr struct {
	Key   string
	Value Value
}

// Kind tells which field of a Value is meaningful.
type Kind uint8

// The kinds of attribute values.
const (
	KindString Kind = iota
	KindInt
	KindFloat
	KindBool
	KindNull
	// KindJSON is a compact JSON document (an object or array), emitted
	// as is so that nested structure and key order survive.
	KindJSON
)

// Value is a small tagged union, cheaper than `any` on the hot path.
type Value struct {
	Kind  Kind
	Str   string // KindString, and the document of KindJSON
	Int   int64  // KindInt; KindBool as 0 or 1
	Float float64
}

// String returns a string value.
func String(s string) Value { return Value{Kind: KindString, Str: s} }

// Int returns an integer value.
func Int(i int64) Value { return Value{Kind: KindInt, Int: i} }

// Float returns a floating-point value.
func Float(f float64) Value { return Value{Kind: KindFloat, Float: f} }

// Bool returns a boolean value.
func Bool(b bool) Value {
	if b {
		return Value{Kind: KindBool, Int: 1}
	}
	return Value{Kind: KindBool}
}

// Null returns the null value.
func Null() Value { return Value{Kind: KindNull} }

// JSON returns a value holding a compact JSON object or array.
func JSON(doc string) Value { return Value{Kind: KindJSON, Str: doc} }

// String renders the value as text, the way a plain-text line would show it.
func (v Value) String() string {
	switch v.Kind {
	case KindInt:
		return strconv.FormatInt(v.Int, 10)
	case KindFloat:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	case KindBool:
		return strconv.FormatBool(v.Int != 0)
	case KindNull:
		return "null"
	default:
		return v.Str
	}
}

// AddTo adds the value under key to a zap object encoder.
func (v Value) AddTo(enc zapcore.ObjectEncoder, key string) {
	switch v.Kind {
	case KindInt:
		enc.AddInt64(key, v.Int)
	case KindFloat:
		enc.AddFloat64(key, v.Float)
	case KindBool:
		enc.AddBool(key, v.Int != 0)
	case KindNull:
		_ = enc.AddReflected(key, nil)
	case KindJSON:
		_ = enc.AddReflected(key, rawJSON(v.Str))
	default:
		enc.AddString(key, v.Str)
	}
}

// rawJSON marshals as itself, so a nested document is copied into the
// entry without being decoded and re-encoded (and keeps its key order).
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

// Attrs marshals a list of attributes as one zap object.
type Attrs []Attr

// MarshalLogObject implements zapcore.ObjectMarshaler.
func (as Attrs) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, a := range as {
		a.Value.AddTo(enc, a.Key)
	}
	return nil
}

// AppendFields appends the fields of r's entry in Caddy's logging to dst:
// app, facility, host, logger_name, level_name and level_no, then
// truncated when the record was cut, received when it is not zero, and
// attrs when there are any.
func (r *Record) AppendFields(dst []zap.Field, truncated bool, received time.Time) []zap.Field {
	dst = append(dst,
		zap.String("app", r.App),
		zap.String("facility", r.Facility),
		zap.String("host", r.Host),
		zap.String("logger_name", r.Logger),
		zap.String("level_name", r.LevelName),
		zap.Int("level_no", r.LevelNo),
	)
	if truncated {
		dst = append(dst, zap.Bool("truncated", true))
	}
	if !received.IsZero() {
		dst = append(dst, zap.Time("received", received))
	}
	if len(r.Attrs) > 0 {
		// A pointer into the record: boxing the slice itself would
		// allocate for every record.
		dst = append(dst, zap.Object("attrs", (*Attrs)(&r.Attrs)))
	}
	return dst
}

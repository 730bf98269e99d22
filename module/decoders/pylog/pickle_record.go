package pylog

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// FromPickle builds a record from a LogRecord's __dict__ as
// SocketHandler and DatagramHandler pickle it (see DecodePickle). It
// makes the record FromForm makes of the same LogRecord sent by
// HTTPHandler — same attribute names and order, same dropped keys, same
// level and time rules — except that values arrive typed: lineno,
// process and thread are ints, relativeCreated a float, and every extra
// value keeps its type. str, int, float, bool and None values become
// attributes of that kind (ints beyond 64 bits and non-finite floats
// become their repr() text, bytes too); lists, tuples and dicts become
// JSON documents (see pickleJSON).
//
// SocketHandler.makePickle has already merged msg with args
// (record.getMessage()), set args and exc_info to None and put the
// formatted traceback in exc_text, so msg is the message. Should a
// sender pickle args anyway, msg is formatted with them as FromForm
// does.
//
// now is the time of records without a usable created. v must be a dict
// with a msg, message or name key.
func FromPickle(v Value, now time.Time) (intake.Record, error) {
	if v.Kind != KindDict {
		return intake.Record{}, fmt.Errorf("not a Python log record: pickled object is a %s, not a dict", v.Kind)
	}
	return fromRecordDict(pickleDict(v.Pairs), now, nil)
}

// pickleDict is the dict SocketHandler pickles, read as a record.
type pickleDict []Pair

func (d pickleDict) len() int { return len(d) }

// key is the attribute name: a record's keys are str, but a hand-made
// pickle may use anything hashable.
func (d pickleDict) key(i int) string {
	if k := d[i].Key; k.Kind == KindStr {
		return k.Str
	}
	return d[i].Key.Raw
}

// text is str() of the value; for the kinds a pickle holds, repr()
// except for str.
func (d pickleDict) text(i int) string {
	if v := d[i].Value; v.Kind == KindStr {
		return v.Str
	}
	return d[i].Value.Raw
}

func (d pickleDict) none(i int) bool { return d[i].Value.Kind == KindNone }

// args returns the args to format msg with, as getMessage() does only
// when they are truthy. makePickle sets them to None.
func (d pickleDict) args(i int, _ []Value) (Value, bool, error) {
	v := d[i].Value
	return v, v.Truthy(), nil
}

// attr keeps the value's type whatever the key: a pickle says what it is.
func (d pickleDict) attr(i int, _ attrHint) intake.Value {
	return pickleAttr(d[i].Value)
}

// pickleAttr turns a decoded value into an attribute of the same type,
// where an attribute can hold it.
func pickleAttr(v Value) intake.Value {
	switch v.Kind {
	case KindStr:
		return intake.String(v.Str)
	case KindNone:
		return intake.Null()
	case KindBool:
		return intake.Bool(v.Int != 0)
	case KindInt:
		if v.Big == nil {
			return intake.Int(v.Int)
		}
	case KindFloat:
		if !math.IsInf(v.Float, 0) && !math.IsNaN(v.Float) {
			return intake.Float(v.Float)
		}
	case KindList, KindTuple, KindSet, KindDict:
		if doc, err := pickleJSON(v); err == nil {
			return intake.JSON(doc)
		}
	}
	return intake.String(v.Raw)
}

// errJSONDepth stops the JSON rendering of a Value nested deeper than
// any DecodePickle returns.
var errJSONDepth = errors.New("nested too deeply for JSON")

// pickleJSON renders a decoded value as compact JSON, keeping what JSON
// can hold exactly and the repr() of what it cannot:
//
//   - dicts are objects, in order; a str key is the name, any other key
//     its repr() (1 becomes "1", b'k' becomes "b'k'");
//   - lists and tuples are arrays;
//   - str is a string, int a number of any size, a finite float the
//     number repr() writes (1e+16, 0.1), None null, True and False
//     true and false;
//   - bytes, non-finite floats and anything else are the string of
//     their repr(): "b'\\x00ab'", "inf", "[...]" for a container inside
//     itself.
//
// The output equals Python's json.dumps(x, ensure_ascii=False,
// separators=(",", ":")) of the value with those substitutions made.
func pickleJSON(v Value) (string, error) {
	b := make([]byte, 0, len(v.Raw)+8)
	b, err := appendPickleJSON(b, v, 0)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func appendPickleJSON(b []byte, v Value, depth int) ([]byte, error) {
	if depth > 2*maxDepth {
		return b, errJSONDepth
	}
	var err error
	switch v.Kind {
	case KindNone:
		return append(b, "null"...), nil
	case KindBool:
		return strconv.AppendBool(b, v.Int != 0), nil
	case KindInt:
		return append(b, v.Raw...), nil
	case KindFloat:
		if math.IsInf(v.Float, 0) || math.IsNaN(v.Float) {
			break
		}
		return append(b, v.Raw...), nil
	case KindStr:
		return appendJSONString(b, v.Str), nil
	case KindList, KindTuple, KindSet:
		b = append(b, '[')
		for i, it := range v.Items {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendPickleJSON(b, it, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case KindDict:
		b = append(b, '{')
		for i, p := range v.Pairs {
			if i > 0 {
				b = append(b, ',')
			}
			key := p.Key.Raw
			if p.Key.Kind == KindStr {
				key = p.Key.Str
			}
			b = appendJSONString(b, key)
			b = append(b, ':')
			if b, err = appendPickleJSON(b, p.Value, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	}
	return appendJSONString(b, v.Raw), nil
}

// appendJSONString appends s as a JSON string the way Python's json
// module writes it with ensure_ascii=False: only '"', '\\' and control
// characters escaped. Invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c < ' ':
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}

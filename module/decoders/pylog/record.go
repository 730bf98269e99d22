package pylog

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// recordDict is a LogRecord's __dict__ as a handler sent it: the fields
// of HTTPHandler's form, every value str()-ed (formDict), or the entries
// of the dict SocketHandler pickles, every value typed (pickleDict).
// FromForm and FromPickle share everything that does not depend on how
// the values arrived, so that both doors make the same record of the
// same LogRecord.
type recordDict interface {
	len() int
	key(i int) string
	// text is str() of value i.
	text(i int) string
	// none reports whether value i is None.
	none(i int) bool
	// args returns value i, the record's args, ready for Format; ok is
	// false when getMessage() would leave msg as it is. A sequence
	// parsed from text keeps its items in items' array when it has room.
	args(i int, items []Value) (args Value, ok bool, err error)
	// attr returns value i as an attribute; hint is what the LogRecord
	// attribute under its key holds.
	attr(i int, hint attrHint) intake.Value
}

// attrHint is what a LogRecord attribute is known to hold, for sources
// that send every value as text.
type attrHint uint8

const (
	hintAny     attrHint = iota
	hintInt              // lineno, process, thread
	hintFloat            // relativeCreated
	hintExcInfo          // exc_info: (type, value, traceback)
)

// formDict is a form of HTTPHandler's, read as a record.
type formDict []Field

func (d formDict) len() int          { return len(d) }
func (d formDict) key(i int) string  { return d[i].Key }
func (d formDict) text(i int) string { return d[i].Value }
func (d formDict) none(i int) bool   { return d[i].Value == "None" }

// args parses str() of the record's args, a tuple or a dict, except when
// it is empty and getMessage() would not format.
func (d formDict) args(i int, items []Value) (Value, bool, error) {
	switch raw := d[i].Value; raw {
	case "", "None", "()", "{}":
		return Value{}, false, nil
	default:
		v, err := parseLiteral(raw, items)
		return v, err == nil, err
	}
}

func (d formDict) attr(i int, hint attrHint) intake.Value {
	s := d[i].Value
	switch hint {
	case hintInt:
		return intAttr(s)
	case hintFloat:
		return floatAttr(s)
	case hintExcInfo:
		return intake.String(excSummary(s))
	}
	return intake.String(s)
}

// recordFields are the indexes of the LogRecord attributes the decoders
// interpret, -1 when absent. The first occurrence of a key counts.
type recordFields struct {
	name, msg, args, levelname, levelno, created, message, excText, excInfo int
}

func indexFields[D recordDict](d D) recordFields {
	k := recordFields{-1, -1, -1, -1, -1, -1, -1, -1, -1}
	set := func(p *int, i int) {
		if *p < 0 {
			*p = i
		}
	}
	for i := range d.len() {
		switch d.key(i) {
		case "name":
			set(&k.name, i)
		case "msg":
			set(&k.msg, i)
		case "args":
			set(&k.args, i)
		case "levelname":
			set(&k.levelname, i)
		case "levelno":
			set(&k.levelno, i)
		case "created":
			set(&k.created, i)
		case "message":
			set(&k.message, i)
		case "exc_text":
			set(&k.excText, i)
		case "exc_info":
			set(&k.excInfo, i)
		}
	}
	return k
}

// FromForm builds a record from the fields of a LogRecord as
// logging.handlers.HTTPHandler sends them (its __dict__, every value
// str()-ed). The message is rendered from msg and args as
// record.getMessage() would, unless a formatter already did (message);
// when it cannot be rendered exactly, the message is msg and the attrs
// args and format_error say why. The fields that Record holds elsewhere
// are dropped; all others become attributes in arrival order, with the
// first of repeated keys winning.
//
// now is the time of records without a valid created field. Only fields
// that cannot be a log record at all (no msg, message or name) are an
// error.
func FromForm(fields []Field, now time.Time) (intake.Record, error) {
	return fromRecordDict(formDict(fields), now, nil)
}

// fromRecordDict is FromForm and FromPickle, with what the record is made
// of stored in s when it is not nil.
func fromRecordDict[D recordDict](d D, now time.Time, s *Scratch) (intake.Record, error) {
	k := indexFields(d)
	if k.msg < 0 && k.message < 0 && k.name < 0 {
		return intake.Record{}, errors.New("not a Python log record: no msg, message or name field")
	}
	rec := intake.Record{Time: now}
	if k.name >= 0 {
		rec.Logger = d.text(k.name)
	}
	setLevel(&rec, textAt(d, k.levelname), textAt(d, k.levelno))
	if k.created >= 0 {
		if t, ok := parseCreated(d.text(k.created)); ok {
			rec.Time = t
		}
	}
	var formatErr error
	rec.Message, formatErr = message(d, k, s)
	var dst []intake.Attr
	if s != nil {
		dst = s.attrs
	}
	rec.Attrs = attrs(d, k, formatErr, dst)
	if s != nil && cap(rec.Attrs) > cap(s.attrs) {
		s.attrs = rec.Attrs
	}
	return rec, nil
}

// optText is a value's text, if the field is there at all.
type optText struct {
	s  string
	ok bool
}

// textAt returns the text of value i, absent when i < 0.
func textAt[D recordDict](d D, i int) optText {
	if i < 0 {
		return optText{}
	}
	return optText{d.text(i), true}
}

// setLevel takes the number from levelno, the name from levelname, and
// whichever is missing from the other. Records that give neither are
// INFO, logging's usual level for what has none.
func setLevel(rec *intake.Record, name, number optText) {
	if number.ok {
		if n, err := strconv.Atoi(strings.TrimSpace(number.s)); err == nil {
			rec.LevelNo, rec.LevelName = n, intake.LevelName(n)
			if name.ok && name.s != "" {
				rec.LevelName = name.s
			}
			return
		}
	}
	rec.LevelNo, rec.LevelName = intake.LevelInfo, "INFO"
	if name.ok && name.s != "" {
		rec.LevelName = name.s
		if n, ok := intake.ParseLevel(name.s); ok {
			rec.LevelNo = n
		}
	}
}

// parseCreated reads created, str() of a float of seconds since the
// epoch ("1763712345.1234567"), straight from its decimal digits: going
// through a float64 would lose the sub-microsecond part.
func parseCreated(s string) (time.Time, bool) {
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" || len(intPart) > 12 || !allDigits(intPart) || !allDigits(frac) {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var nsec int64
	for i := range 9 {
		nsec *= 10
		if i < len(frac) {
			nsec += int64(frac[i] - '0')
		}
	}
	if len(frac) > 9 && frac[9] >= '5' {
		nsec++ // round to the nearest nanosecond; time.Unix carries
	}
	return time.Unix(sec, nsec), true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// message is the record's rendered message and, when msg % args could
// not be rendered exactly, why.
func message[D recordDict](d D, k recordFields, scratch *Scratch) (string, error) {
	if k.message >= 0 {
		return d.text(k.message), nil
	}
	var msg string
	if k.msg >= 0 {
		msg = d.text(k.msg)
	}
	if k.args < 0 {
		return msg, nil
	}
	var items []Value
	var buf []byte
	limit := 0
	if scratch != nil {
		items, buf, limit = scratch.items, scratch.msg, scratch.MaxMessage
	}
	args, ok, err := d.args(k.args, items)
	if !ok {
		return msg, err
	}
	s, buf, _, err := format(msg, args, buf, limit)
	if scratch != nil {
		// Keep what grew for the next record.
		if cap(args.Items) > cap(scratch.items) {
			scratch.items = args.Items[:0]
		}
		scratch.msg = buf[:0]
	}
	if err != nil {
		return msg, err
	}
	return s, nil
}

// isNone reports whether a value holds nothing: None, or empty.
func isNone[D recordDict](d D, i int) bool { return d.none(i) || d.text(i) == "" }

// attrs turns the fields Record does not hold into attributes.
func attrs[D recordDict](d D, k recordFields, formatErr error, dst []intake.Attr) []intake.Attr {
	hasExcText := k.excText >= 0 && !isNone(d, k.excText)
	n := d.len()
	out := dst[:0]
	if cap(out) < n+1 { // +1: args may add format_error
		out = make([]intake.Attr, 0, n+1)
	}
	var keys keyIndex
	keys.init(n)
	for i := range n {
		if repeated(d, i, &keys) {
			continue
		}
		switch key := d.key(i); key {
		case "name", "msg", "levelname", "levelno", "created", "msecs", "message", "asctime":
			// in Record already, or (msecs, asctime) derived from created
		case "args":
			if formatErr != nil {
				out = append(out,
					intake.Attr{Key: "args", Value: intake.String(d.text(i))},
					intake.Attr{Key: "format_error", Value: intake.String(formatErr.Error())})
			}
		case "exc_text", "stack_info":
			if !isNone(d, i) {
				out = append(out, intake.Attr{Key: key, Value: intake.String(d.text(i))})
			}
		case "exc_info":
			if !hasExcText && !isNone(d, i) {
				out = append(out, intake.Attr{Key: key, Value: d.attr(i, hintExcInfo)})
			}
		case "taskName":
			if !d.none(i) {
				out = append(out, intake.Attr{Key: key, Value: d.attr(i, hintAny)})
			}
		case "lineno", "process", "thread":
			out = append(out, intake.Attr{Key: key, Value: d.attr(i, hintInt)})
		case "relativeCreated":
			out = append(out, intake.Attr{Key: key, Value: d.attr(i, hintFloat)})
		default:
			out = append(out, intake.Attr{Key: key, Value: d.attr(i, hintAny)})
		}
	}
	return out
}

func intAttr(s string) intake.Value {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return intake.Int(n)
	}
	return intake.String(s)
}

func floatAttr(s string) intake.Value {
	if x, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(x, 0) && !math.IsNaN(x) {
		return intake.Float(x)
	}
	return intake.String(s)
}

// keyIndex remembers the keys of a record seen so far. Up to 64 keys
// it chains them in 64 buckets by length and first and last byte, on
// the stack (the couple dozen keys of a LogRecord rarely share a
// bucket, so a key is compared with one or two others, not all before
// it); beyond that, a map.
type keyIndex struct {
	head, next [64]int8
	seen       map[string]struct{}
}

func (x *keyIndex) init(n int) {
	if n > len(x.head) {
		x.seen = make(map[string]struct{}, n)
		return
	}
	for i := range x.head {
		x.head[i] = -1
	}
}

func keyBucket(key string) int {
	if key == "" {
		return 0
	}
	return (len(key)*31 + int(key[0])*7 + int(key[len(key)-1])) & 63
}

// repeated reports whether the key of value i came before, and
// remembers it if not.
func repeated[D recordDict](d D, i int, x *keyIndex) bool {
	key := d.key(i)
	if x.seen != nil {
		if _, ok := x.seen[key]; ok {
			return true
		}
		x.seen[key] = struct{}{}
		return false
	}
	b := keyBucket(key)
	for j := x.head[b]; j >= 0; j = x.next[j] {
		if d.key(int(j)) == key {
			return true
		}
	}
	x.next[i], x.head[b] = x.head[b], int8(i)
	return false
}

// excSummary turns str() of a record's exc_info, which no formatter has
// rendered into a traceback, into the traceback's last line:
// "(<class 'ZeroDivisionError'>, ZeroDivisionError('division by zero'),
// <traceback object at 0x...>)" becomes "ZeroDivisionError: division by
// zero". What it cannot read is kept as it came.
func excSummary(raw string) string {
	v, err := ParseLiteral(raw)
	if err != nil || v.Kind != KindTuple || len(v.Items) != 3 {
		return raw
	}
	exc := v.Items[1]
	if exc.Str == "" || (exc.Kind != KindCall && exc.Kind != KindOpaque) {
		return raw
	}
	name := exceptionName(v.Items[0], exc.Str)
	text, ok := "", false
	switch {
	case exc.Kind != KindCall:
	case name == exc.Str && (isPlainException(name) || name == "KeyError"):
		text, ok = exc.PyStr()
	case len(exc.Items) == 1 && exc.Items[0].Kind == KindStr:
		// Most exception classes keep BaseException's __str__.
		text, ok = exc.Items[0].Str, true
	}
	if !ok {
		text = exc.Raw
	}
	if text == "" {
		return name
	}
	return name + ": " + text
}

// exceptionName is the exception's name as a traceback shows it: module
// and qualified name, taken from the class repr "<class 'pkg.Error'>",
// without the module for builtins and __main__.
func exceptionName(class Value, callee string) string {
	if class.Kind != KindOpaque {
		return callee
	}
	name, ok := strings.CutPrefix(class.Raw, "<class '")
	if !ok {
		return callee
	}
	name, ok = strings.CutSuffix(name, "'>")
	if !ok || name == "" {
		return callee
	}
	return strings.TrimPrefix(name, "__main__.")
}

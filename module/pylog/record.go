package pylog

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// recordFields are the indexes of the LogRecord attributes FromForm
// interprets, -1 when absent. The first occurrence of a key counts.
type recordFields struct {
	name, msg, args, levelname, levelno, created, message, excText, excInfo int
}

func indexFields(fields []Field) recordFields {
	k := recordFields{-1, -1, -1, -1, -1, -1, -1, -1, -1}
	set := func(p *int, i int) {
		if *p < 0 {
			*p = i
		}
	}
	for i, f := range fields {
		switch f.Key {
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
	k := indexFields(fields)
	if k.msg < 0 && k.message < 0 && k.name < 0 {
		return intake.Record{}, errors.New("not a Python log record: no msg, message or name field")
	}
	rec := intake.Record{Time: now}
	if k.name >= 0 {
		rec.Logger = fields[k.name].Value
	}
	setLevel(&rec, fieldValue(fields, k.levelname), fieldValue(fields, k.levelno))
	if k.created >= 0 {
		if t, ok := parseCreated(fields[k.created].Value); ok {
			rec.Time = t
		}
	}
	var formatErr error
	rec.Message, formatErr = message(fields, k)
	rec.Attrs = attrs(fields, k, formatErr)
	return rec, nil
}

// fieldValue returns the value at index i, or nil when i < 0.
func fieldValue(fields []Field, i int) *string {
	if i < 0 {
		return nil
	}
	return &fields[i].Value
}

// setLevel takes the number from levelno, the name from levelname, and
// whichever is missing from the other. Records that give neither are
// INFO, logging's usual level for what has none.
func setLevel(rec *intake.Record, name, number *string) {
	if number != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(*number)); err == nil {
			rec.LevelNo, rec.LevelName = n, intake.LevelName(n)
			if name != nil && *name != "" {
				rec.LevelName = *name
			}
			return
		}
	}
	rec.LevelNo, rec.LevelName = intake.LevelInfo, "INFO"
	if name != nil && *name != "" {
		rec.LevelName = *name
		if n, ok := intake.ParseLevel(*name); ok {
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
func message(fields []Field, k recordFields) (string, error) {
	if k.message >= 0 {
		return fields[k.message].Value, nil
	}
	var msg string
	if k.msg >= 0 {
		msg = fields[k.msg].Value
	}
	if k.args < 0 {
		return msg, nil
	}
	switch raw := fields[k.args].Value; raw {
	case "", "None", "()", "{}":
		return msg, nil
	default:
		args, err := ParseLiteral(raw)
		if err != nil {
			return msg, err
		}
		s, err := Format(msg, args)
		if err != nil {
			return msg, err
		}
		return s, nil
	}
}

// isNone reports whether a field holds nothing: str(None), or empty.
func isNone(s string) bool { return s == "None" || s == "" }

// attrs turns the fields Record does not hold into attributes.
func attrs(fields []Field, k recordFields, formatErr error) []intake.Attr {
	hasExcText := k.excText >= 0 && !isNone(fields[k.excText].Value)
	out := make([]intake.Attr, 0, len(fields))
	var seen map[string]struct{}
	if len(fields) > 32 {
		seen = make(map[string]struct{}, len(fields))
	}
	for i, f := range fields {
		if repeated(fields, i, seen) {
			continue
		}
		switch f.Key {
		case "name", "msg", "levelname", "levelno", "created", "msecs", "message", "asctime":
			// in Record already, or (msecs, asctime) derived from created
		case "args":
			if formatErr != nil {
				out = append(out,
					intake.Attr{Key: "args", Value: intake.String(f.Value)},
					intake.Attr{Key: "format_error", Value: intake.String(formatErr.Error())})
			}
		case "exc_text", "stack_info":
			if !isNone(f.Value) {
				out = append(out, intake.Attr{Key: f.Key, Value: intake.String(f.Value)})
			}
		case "exc_info":
			if !hasExcText && !isNone(f.Value) {
				out = append(out, intake.Attr{Key: f.Key, Value: intake.String(excSummary(f.Value))})
			}
		case "taskName":
			if f.Value != "None" {
				out = append(out, intake.Attr{Key: f.Key, Value: intake.String(f.Value)})
			}
		case "lineno", "process", "thread":
			out = append(out, intake.Attr{Key: f.Key, Value: intAttr(f.Value)})
		case "relativeCreated":
			out = append(out, intake.Attr{Key: f.Key, Value: floatAttr(f.Value)})
		default:
			out = append(out, intake.Attr{Key: f.Key, Value: intake.String(f.Value)})
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

// repeated reports whether the key of fields[i] came before: a scan
// back for the couple dozen fields a record has, the seen map (which it
// fills) when there are more.
func repeated(fields []Field, i int, seen map[string]struct{}) bool {
	key := fields[i].Key
	if seen != nil {
		if _, ok := seen[key]; ok {
			return true
		}
		seen[key] = struct{}{}
		return false
	}
	for _, f := range fields[:i] {
		if f.Key == key {
			return true
		}
	}
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

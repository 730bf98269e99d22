package pylog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests run the real python3 and compare with what it computes, so
// that "exactly as Python" is checked rather than assumed. Without
// python3 on PATH they are skipped, except in CI, where that would hide
// a broken setup.

// runPython runs script with input on stdin and decodes its JSON output
// into out.
func runPython(t *testing.T, script string, input, out any) {
	t.Helper()
	py := pythonTB(t)
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Env = append(os.Environ(), "PYTHONIOENCODING=utf-8", "PYTHONHASHSEED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		t.Fatalf("decoding python3 output: %v\n%s", err, stdout)
	}
}

// formatScript evaluates each case's args expression, then prints, per
// case, repr(args) (what str() gives for the tuples and dicts logging
// sends) and either `msg % args`, applied as getMessage() applies it, or
// the error.
const formatScript = `
import collections, datetime, decimal, json, re, sys

def rec():
    l = [1]
    l.append(l)
    return l

class Person:
    def __repr__(self):
        return "<Person O'Brien>"

class AppError(Exception):
    pass

ns = dict(collections=collections, datetime=datetime, decimal=decimal, re=re,
          rec=rec, Person=Person, AppError=AppError)
out = []
for msg, expr in json.load(sys.stdin):
    args = eval(expr, ns)
    raw = repr(args)
    try:
        out.append([raw, msg % args if args else msg, None])
    except Exception as e:
        out.append([raw, None, type(e).__name__ + ": " + str(e)])
print(json.dumps(out))
`

// formatCase is a message template and its arguments as a Python
// expression. unknown marks cases Python renders but Format must refuse:
// the output depends on a __str__ we cannot see.
type formatCase struct {
	msg, args string
	unknown   bool
}

var pythonFormatCases = []formatCase{
	// the everyday ones
	{msg: "hello %s", args: "('world',)"},
	{msg: "user %s logged in from %s after %d tries", args: "('alice', '10.0.0.1', 3)"},
	{msg: "%s %s %s", args: "(1, 2.5, None)"},
	{msg: "%s", args: "(('abc', 1, 2.5, None, [1, 'x'], {'k': b'v'}),)"},
	{msg: "%(name)s is %(age)d", args: "{'name': 'Bob', 'age': 42}"},
	{msg: "%(a)s %(a)r %(b)05.1f", args: "{'a': 'x', 'b': 2.25}"},
	{msg: "%(a(b))s", args: "{'a(b)': 1}"},
	{msg: "%s", args: "{'a': 1}"},
	{msg: "%s %(a)s", args: "{'a': 1}"},
	{msg: "static text", args: "{'a': 1}"},
	{msg: "static text", args: "[1]"},
	{msg: "static text", args: "b'x'"},
	{msg: "%s", args: "[1, 2]"},
	{msg: "%s", args: "5"},
	{msg: "100%% %s", args: "('done',)"},
	{msg: "%ld %hd %Lf", args: "(1, 2, 3.5)"},
	{msg: "%s %d %%", args: "()"},
	{msg: "%s", args: "{}"},
	{msg: "%s", args: "None"},
	{msg: "%s", args: "0"},

	// errors Python raises
	{msg: "%(a)s %s", args: "{'a': 1}"},
	{msg: "no conversions", args: "('extra',)"},
	{msg: "%s %s", args: "('one',)"},
	{msg: "%s and %s", args: "5"},
	{msg: "%(missing)s", args: "{'a': 1}"},
	{msg: "%(a)s", args: "('x',)"},
	{msg: "%(a)s", args: "[1]"},
	{msg: "%(1)s", args: "{1: 'a'}"},
	{msg: "%y", args: "(1,)"},
	{msg: "abc %", args: "(1,)"},
	{msg: "%(a", args: "{'a': 1}"},
	{msg: "%5%", args: "(1,)"},
	{msg: "50% of %s", args: "('x',)"},
	{msg: "%d", args: "('5',)"},
	{msg: "%f", args: "('x',)"},
	{msg: "%x", args: "(2.0,)"},
	{msg: "%d", args: "(float('inf'),)"},
	{msg: "%d", args: "(float('nan'),)"},
	{msg: "%c", args: "('ab',)"},
	{msg: "%c", args: "(0x110000,)"},
	{msg: "%c", args: "(1.0,)"},
	{msg: "%*d", args: "(1.5, 3)"},
	{msg: "%d", args: "(1j,)"},

	// widths, precisions, flags
	{msg: "%5.2f|%-8s|%+d|% d|% d", args: "(3.14159, 'ab', 5, 5, -5)"},
	{msg: "%*d|%-*d|%*s|", args: "(5, 42, 5, 42, -6, 'ab')"},
	{msg: "%.*f|%.*f", args: "(2, 3.14159, -3, 2.5)"},
	{msg: "%.5d|%+.3d|%08d|%-08d|%+08d", args: "(42, 7, -42, 42, 42)"},
	{msg: "%x %X %o %#x %#X %#o", args: "(255, 255, 8, 255, 255, 8)"},
	{msg: "%x|%#x|%#010x|%#10x|%-#10x|", args: "(-255, -255, -255, -255, -255)"},
	{msg: "%#o|%#.3o|%+#x|% #X", args: "(0, 8, 255, 255)"},
	{msg: "%s %r %d %i %u %f", args: "(True, False, True, False, True, False)"},
	{msg: "%05s|%-5r|%.1r|%10a|", args: "('ab', 'ab', 'ab', 'é')"},

	// floats
	{msg: "%e %E %f %F %g %G", args: "(1234.5678,) * 6"},
	{msg: "%g %g %g %g %g", args: "(1e-5, 1e16, 123456789, 0.0001, 100000.0)"},
	{msg: "%.3g %#g %#.3g %#.0f %#.0e %.0e", args: "(0.0001234, 1.0, 1, 1.5, 2.5, 2.5)"},
	{msg: "%.0f %.0f %.0f %.1f %.2f", args: "(0.5, 1.5, 2.5, 0.25, 1.005)"},
	{msg: "%.20f %.17g %.30e", args: "(0.1, 0.1, 0.1)"},
	{msg: "%s %r %s %s", args: "(0.1 + 0.2, 1e22, 1e16, -0.0)"},
	{msg: "%s %s %s %s", args: "(1e-05, 1.5e+300, 5e-324, 123456789012345680.0)"},
	{msg: "%f %e %g %F %E %G", args: "(float('inf'), float('-inf'), float('nan')) * 2"},
	{msg: "%05f|%+f|% f|%-6e|%06G", args: "(float('inf'), float('nan'), float('-inf'), float('inf'), float('nan'))"},
	{msg: "%010.3f|%-10.2e|%+.4g|% 010.3f|%+010e", args: "(-3.14159, 12345.678, 0.000123456, 3.14159, 1e100)"},
	{msg: "%d %d %i", args: "(3.99, -3.99, 1e300)"},
	{msg: "%f", args: "(1e300,)"},
	{msg: "%.3f %g %e", args: "(-0.0, -0.0, -0.0)"},

	// big ints
	{msg: "%d %s %r", args: "(2**100, -2**100, 10**50)"},
	{msg: "%x %X %#o %e %.3e", args: "(-(2**100), 2**64, 2**64, 2**1023, 12345678901234567890123)"},
	{msg: "%.0f %e %f", args: "(2**53 + 1, 2**1024 - 2**970 - 1, 10**22)"},
	{msg: "%e", args: "(2**1024 - 2**970,)"},
	{msg: "%f", args: "(10**400,)"},
	{msg: "%c", args: "(2**70,)"},

	// %c and unicode
	{msg: "%c%c%c|%5c|%-3c|", args: "(65, 'é', 0x1F600, 'x', 66)"},
	{msg: "%c", args: "(0xd800,)"},
	{msg: "%5s|%-5s|%.2s|%-4s|%4s|", args: "('é', 'ü', 'héllo', '日本', '😀x')"},
	{msg: "héllo %s wörld %d ✓", args: "('ü', 3)"},
	{msg: "%s|%r|%a", args: "('日本語 😀',) * 3"},
	{msg: "%a %a", args: "('é😀\u1234', ['ü', b'\\xe9'])"},
	{msg: "%r", args: "('é\\n\\t\\x00\\x7f\\u200b\\xa0\\xad\\u2028\\U000e0001',)"},
	{msg: "%s", args: "('\\u0301combining',)"},

	// quotes and escapes inside containers
	{msg: "%s|%r", args: "('a\\'b\"c', \"it's\")"},
	{msg: "%r %s", args: "(['a', \"b'c\", {'k': (1,)}, 'say \"hi\"', '\\\\ back'],) * 2"},
	{msg: "%s %r", args: "(b'x\\x00\\xff\\'', b'')"},
	{msg: "%s", args: "('\\x07\\x08\\x0c\\x0b',)"},

	// containers
	{msg: "%s|%s|%s|%s", args: "([1, 'two', (3,), {4: None}], {1, 2, 3}, (), [])"},
	{msg: "%s %s %s", args: "(frozenset({1}), set(), ((1,),))"},
	{msg: "%s", args: "(rec(),)"},
	{msg: "%s %r", args: "({'a': {'b': [1, (2, 3)]}},) * 2"},
	{msg: "%s %s", args: "(1+2j, -1j)"},
	{msg: "%s %s", args: "(Ellipsis, NotImplemented)"},

	// exceptions
	{msg: "%s", args: "(ValueError('bad'),)"},
	{msg: "%s", args: "(ValueError('a', 2),)"},
	{msg: "[%s]", args: "(ValueError(),)"},
	{msg: "%s|%s", args: "(KeyError('k'), KeyError('a', 'b'))"},
	{msg: "%r", args: "(ZeroDivisionError('division by zero'),)"},
	{msg: "%s", args: "(RuntimeError(ValueError('inner')),)"},
	{msg: "%s %s", args: "(TypeError(42), StopIteration())"},
	{msg: "error: %s", args: "(Exception('x\\ny'),)"},
	{msg: "%s", args: "(OSError(2, 'No such file'),)", unknown: true},
	{msg: "%s", args: "(AppError('custom'),)", unknown: true},
	{msg: "%r", args: "(AppError('custom'),)"},

	// objects known only by their repr
	{msg: "%s", args: "(datetime.datetime(2020, 1, 1),)", unknown: true},
	{msg: "%r", args: "(datetime.datetime(2020, 1, 1, 12, 30, 5, 123),)"},
	{msg: "%s", args: "(decimal.Decimal('1.5'),)", unknown: true},
	{msg: "%r", args: "(decimal.Decimal('1.5'),)"},
	{msg: "%d", args: "(decimal.Decimal('1.5'),)", unknown: true},
	{msg: "%s", args: "(object(),)", unknown: true},
	{msg: "%r %a", args: "(print, int)"},
	{msg: "%r|%s", args: "(collections.OrderedDict(a=1), collections.deque([1, 2]))"},
	{msg: "%s %s %s", args: "(range(0, 3), collections.Counter('aab'), collections.defaultdict(list))"},
	{msg: "%r", args: "(re.compile('a>b').match('a>b'),)"},
	{msg: "%r %s", args: "(Person(), 'x')"},
	{msg: "%s", args: "(Person(),)", unknown: true},
	{msg: "%s", args: "(datetime.timezone.utc,)", unknown: true},
	{msg: "static text", args: "range(0, 3)"},
	{msg: "static text", args: "collections.OrderedDict(a=1)"},
	{msg: "static text", args: "collections.Counter('a')"},
	{msg: "static text", args: "collections.deque([1])"},
	{msg: "static text", args: "frozenset({1})"},
	{msg: "static text", args: "datetime.date(2020, 1, 1)", unknown: true},
	{msg: "%s", args: "collections.deque([1])"},
	{msg: "%(a)s", args: "collections.OrderedDict(a=1)", unknown: true},
}

func TestFormatAgainstPython(t *testing.T) {
	runFormatCases(t, pythonFormatCases)
}

// TestFormatNumbersAgainstPython formats random ints and floats with
// random flags, widths, precisions and conversions.
func TestFormatNumbersAgainstPython(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var cases []formatCase
	for range 1500 {
		var spec strings.Builder
		spec.WriteByte('%')
		for _, flag := range "-+ #0" {
			if r.IntN(4) == 0 {
				spec.WriteRune(flag)
			}
		}
		if r.IntN(2) == 0 {
			spec.WriteString(strconv.Itoa(r.IntN(25)))
		}
		if r.IntN(2) == 0 {
			spec.WriteString("." + strconv.Itoa(r.IntN(25)))
		}
		spec.WriteByte("diouxXeEfFgGsrac"[r.IntN(16)])
		cases = append(cases, formatCase{msg: "<" + spec.String() + ">", args: "(" + randomNumber(r) + ",)"})
	}
	runFormatCases(t, cases)
}

// randomNumber returns a Python expression for an int or float of any
// magnitude, or one of the special values.
func randomNumber(r *rand.Rand) string {
	switch r.IntN(8) {
	case 0:
		return strconv.FormatInt(r.Int64N(2000)-1000, 10)
	case 1:
		return fmt.Sprintf("%d**%d * %d", 2+r.IntN(9), r.IntN(80), 1-2*r.IntN(2))
	case 2:
		return []string{"float('inf')", "float('-inf')", "float('nan')", "0.0", "-0.0", "True", "5e-324", "1.7976931348623157e308"}[r.IntN(8)]
	case 3:
		// round-number floats, where rounding ties show
		return strconv.FormatFloat(float64(r.IntN(20000)-10000)/8, 'g', -1, 64)
	}
	f := math.Float64frombits(r.Uint64())
	for math.IsNaN(f) || math.IsInf(f, 0) {
		f = math.Float64frombits(r.Uint64())
	}
	if r.IntN(2) == 0 {
		f = (r.Float64() - 0.5) * math.Pow(10, float64(r.IntN(40)-20))
	}
	return "float.fromhex('" + strconv.FormatFloat(f, 'x', -1, 64) + "')"
}

func runFormatCases(t *testing.T, cases []formatCase) {
	t.Helper()
	input := make([][2]string, len(cases))
	for i, c := range cases {
		input[i] = [2]string{c.msg, c.args}
	}
	var results [][3]*string
	runPython(t, formatScript, input, &results)
	if len(results) != len(cases) {
		t.Fatalf("python3 returned %d results for %d cases", len(results), len(cases))
	}
	for i, c := range cases {
		raw, want, pyErr := *results[i][0], results[i][1], results[i][2]
		args, err := ParseLiteral(raw)
		if err != nil {
			t.Errorf("ParseLiteral(%q) (from %s): %v", raw, c.args, err)
			continue
		}
		if args.Raw != raw {
			t.Errorf("ParseLiteral(%q).Raw = %q", raw, args.Raw)
		}
		got, err := Format(c.msg, args)
		switch {
		case pyErr != nil && err == nil:
			t.Errorf("%q %% %s = %q, want an error like Python's %s", c.msg, raw, got, *pyErr)
		case pyErr != nil:
		case c.unknown && err == nil:
			t.Errorf("%q %% %s = %q, want an error (Python gave %q from what a repr does not tell)", c.msg, raw, got, *want)
		case c.unknown:
		case err != nil:
			t.Errorf("%q %% %s: %v, want %q", c.msg, raw, err, *want)
		case got != *want:
			t.Errorf("%q %% %s\n got %q\nwant %q", c.msg, raw, got, *want)
		}
	}
}

// reprScript prints Python's repr() of strings, floats (sent as hex) and
// bytes (sent as lists of byte values).
const reprScript = `
import json, sys
d = json.load(sys.stdin)
print(json.dumps({
    "strs": [repr(s) for s in d["strs"]],
    "floats": [repr(float.fromhex(f)) for f in d["floats"]],
    "bytes": [repr(bytes(b)) for b in d["bytes"]],
}))
`

// TestReprAgainstPython checks the constructors' Raw, which the pickle
// decoder relies on, and that ParseLiteral reads it back.
func TestReprAgainstPython(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	strs := []string{"", "plain", "it's", `say "hi"`, `both ' and "`, "back\\slash", "\t\n\r\x00\x1f\x7f",
		"\u0080\u0085\u00a0\u00ad\u00e9\u00ff", "\u200b\u2028\u2029\u3000\ue000\ufeff\uffff", "日本語 😀 \U000e0001 \U0010ffff",
		"\u0301combining", "\u0378unassigned"}
	for range 300 {
		var b strings.Builder
		for range 1 + r.IntN(6) {
			switch r.IntN(4) {
			case 0:
				b.WriteRune(rune(r.IntN(0x100)))
			case 1:
				b.WriteRune(rune(0x100 + r.IntN(0x2d00))) // long-assigned blocks
			default:
				b.WriteByte(byte(0x20 + r.IntN(0x5f)))
			}
		}
		strs = append(strs, b.String())
	}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1.5, 1e16, 1e15, 123456789012345678, 1e-4, 1e-5, 0.0001234,
		5e-324, math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN(), 1e22, 9007199254740993, 2.5e-7}
	for range 500 {
		f := math.Float64frombits(r.Uint64())
		if r.IntN(2) == 0 {
			f = r.Float64() * math.Pow(10, float64(r.IntN(44)-22))
		}
		floats = append(floats, f)
	}
	hexes := make([]string, len(floats))
	for i, f := range floats {
		switch {
		case math.IsNaN(f):
			hexes[i] = "nan"
		case math.IsInf(f, 0):
			hexes[i] = map[bool]string{true: "inf", false: "-inf"}[f > 0]
		default:
			hexes[i] = strconv.FormatFloat(f, 'x', -1, 64)
		}
	}
	bytesCases := [][]byte{{}, []byte("it's"), []byte(`"'`), {0, 9, 10, 13, 31, 127, 128, 255}, []byte("\\x")}
	var want struct{ Strs, Floats, Bytes []string }
	runPython(t, reprScript, map[string]any{"strs": strs, "floats": hexes, "bytes": toInts(bytesCases)}, &want)

	for i, s := range strs {
		v := Str(s)
		if v.Raw != want.Strs[i] {
			t.Errorf("Str(%+q).Raw = %s, want %s", s, v.Raw, want.Strs[i])
			continue
		}
		back, err := ParseLiteral(v.Raw)
		if err != nil || back.Kind != KindStr || back.Str != s {
			t.Errorf("ParseLiteral(%s) = %+q, %v", v.Raw, back.Str, err)
		}
	}
	for i, f := range floats {
		v := Float(f)
		if v.Raw != want.Floats[i] {
			t.Errorf("Float(%v).Raw = %s, want %s", f, v.Raw, want.Floats[i])
			continue
		}
		back, err := ParseLiteral(v.Raw)
		if err != nil || back.Kind != KindFloat || (back.Float != f && !math.IsNaN(f)) {
			t.Errorf("ParseLiteral(%s) = %v, %v", v.Raw, back.Float, err)
		}
	}
	for i, b := range bytesCases {
		v := Bytes(b)
		if v.Raw != want.Bytes[i] {
			t.Errorf("Bytes(%q).Raw = %s, want %s", b, v.Raw, want.Bytes[i])
			continue
		}
		back, err := ParseLiteral(v.Raw)
		if err != nil || back.Kind != KindBytes || back.Str != string(b) {
			t.Errorf("ParseLiteral(%s) = %q, %v", v.Raw, back.Str, err)
		}
	}
}

func toInts(bs [][]byte) [][]int {
	out := make([][]int, len(bs))
	for i, b := range bs {
		out[i] = make([]int, len(b))
		for j, c := range b {
			out[i][j] = int(c)
		}
	}
	return out
}

// recordScript makes real LogRecords the way Logger._log does and
// encodes them exactly as HTTPHandler.emit does, printing for each the
// form, getMessage() (or None when it raises) and what a traceback would
// show.
const recordScript = `
import json, logging, logging.handlers, sys, traceback, urllib.parse

class AppError(Exception):
    pass

logger = logging.getLogger("app.web")
handler = logging.handlers.HTTPHandler("localhost:8080", "/log", method="POST")

def make(msg, args, level=logging.INFO, exc_info=None, extra=None, sinfo=None, formatted=False):
    r = logger.makeRecord(logger.name, level, "/srv/app/views.py", 42, msg, args,
                          exc_info, func="handler", extra=extra, sinfo=sinfo)
    if formatted:
        logging.Formatter("%(asctime)s %(levelname)s %(message)s").format(r)
    return r

def caught(exc):
    try:
        raise exc
    except BaseException:
        return sys.exc_info()

def divide():
    try:
        1 / 0
    except ZeroDivisionError:
        return sys.exc_info()

EXTRA = {"request_id": "abc-123", "user": {"id": 5}, "tags": ["a", "b"], "count": 7, "note": "naïve ✓ & = %"}

records = [
    make("user %s logged in from %s", ("alice", "10.0.0.1")),
    make("%(name)s has %(n)d items costing %(price).2f", ({"name": "Bob", "n": 3, "price": 9.5},)),
    make("division failed for %r", (17,), logging.ERROR, exc_info=divide()),
    make("héllo %s — %s ✓", ("wörld", "日本語 😀")),
    make("plain message", (), extra=EXTRA),
    make("100% done", None),
    make("lookup failed", (), logging.WARNING, exc_info=caught(KeyError("missing")), formatted=True),
    make("app failed", (), logging.CRITICAL, exc_info=caught(AppError("boom"))),
    make("failed: %s", (ValueError("bad value"),), logging.ERROR),
    make("with stack", (), logging.DEBUG, sinfo="Stack (most recent call last):\n  File \"x.py\", line 1, in <module>"),
    make("custom level %d", (25,), 25),
    make("50% of %s", ("x",)),
    make("%s and %r", ("it's", ['a', "b'c", {'k': b'v'}])),
    make("%-10s|%5.1f|%x", ("left", 2.25, 255)),
    make("empty exc", (), exc_info=caught(ValueError())),
    make("multi arg exc", (), exc_info=caught(ValueError("a", 2))),
]

out = []
for r in records:
    form = urllib.parse.urlencode(handler.mapLogRecord(r))
    try:
        message = r.getMessage()
    except Exception:
        message = None
    exc = None
    if r.exc_info:
        exc = traceback.format_exception_only(r.exc_info[0], r.exc_info[1])[-1].rstrip("\n")
    sec = int(r.created)
    out.append({
        "form": form,
        "message": message,
        "msg": str(r.msg),
        "sec": sec,
        "nsec": round((r.created - sec) * 1e9),
        "exc": exc,
        "exc_text": r.exc_text,
        "levelno": r.levelno,
        "levelname": r.levelname,
        "attrs": {k: str(v) for k, v in vars(r).items() if k in EXTRA or k in ("lineno", "funcName", "pathname")},
    })
print(json.dumps(out))
`

func TestFromFormAgainstPython(t *testing.T) {
	var records []struct {
		Form, Msg, Levelname string
		Message, Exc         *string
		ExcText              *string `json:"exc_text"`
		Sec, Nsec            int64
		Levelno              int
		Attrs                map[string]string
	}
	runPython(t, recordScript, nil, &records)
	for i, want := range records {
		fields, err := ParseForm(want.Form, 1000)
		if err != nil {
			t.Fatalf("record %d: ParseForm: %v", i, err)
		}
		rec, err := FromForm(fields, time.Time{})
		if err != nil {
			t.Fatalf("record %d: FromForm: %v", i, err)
		}
		attrs := attrMap(rec)
		if want.Message != nil {
			if rec.Message != *want.Message {
				t.Errorf("record %d: Message = %q, want %q (format_error %q)", i, rec.Message, *want.Message, attrs["format_error"])
			}
		} else if rec.Message != want.Msg || attrs["format_error"] == "" || attrs["args"] == "" {
			t.Errorf("record %d: getMessage() raises, but Message = %q, attrs %v", i, rec.Message, attrs)
		}
		created := time.Unix(want.Sec, want.Nsec)
		if d := rec.Time.Sub(created); d > time.Microsecond || d < -time.Microsecond {
			t.Errorf("record %d: Time = %v, want %v", i, rec.Time, created)
		}
		if rec.Logger != "app.web" || rec.LevelNo != want.Levelno || rec.LevelName != want.Levelname {
			t.Errorf("record %d: logger %q, level %d %q", i, rec.Logger, rec.LevelNo, rec.LevelName)
		}
		for k, v := range want.Attrs {
			if attrs[k] != v {
				t.Errorf("record %d: attr %s = %q, want %q", i, k, attrs[k], v)
			}
		}
		switch {
		case want.ExcText != nil:
			if attrs["exc_text"] != *want.ExcText {
				t.Errorf("record %d: exc_text = %q, want %q", i, attrs["exc_text"], *want.ExcText)
			}
			if _, ok := attrs["exc_info"]; ok {
				t.Errorf("record %d: exc_info kept next to exc_text", i)
			}
		case want.Exc != nil:
			if attrs["exc_info"] != *want.Exc {
				t.Errorf("record %d: exc_info = %q, want %q", i, attrs["exc_info"], *want.Exc)
			}
		}
	}
}

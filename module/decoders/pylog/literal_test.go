package pylog

import (
	"math"
	"strings"
	"testing"
)

var literalCases = []struct {
	in   string
	kind Kind
	str  string // Str, when meaningful
	n    int    // len(Items) or len(Pairs)
}{
	{in: "None", kind: KindNone},
	{in: "True", kind: KindBool},
	{in: "False", kind: KindBool},
	{in: "0", kind: KindInt},
	{in: "-42", kind: KindInt},
	{in: "123456789012345678901234567890", kind: KindInt},
	{in: "-9223372036854775809", kind: KindInt},
	{in: "1.5", kind: KindFloat},
	{in: "-0.0", kind: KindFloat},
	{in: "1e+16", kind: KindFloat},
	{in: "1e-05", kind: KindFloat},
	{in: "inf", kind: KindFloat},
	{in: "-inf", kind: KindFloat},
	{in: "nan", kind: KindFloat},
	{in: "(1+2j)", kind: KindComplex},
	{in: "(-0-1j)", kind: KindComplex},
	{in: "(nan+infj)", kind: KindComplex},
	{in: "(1e+20-1e-05j)", kind: KindComplex},
	{in: "-1j", kind: KindComplex},
	{in: "infj", kind: KindComplex},
	{in: "'abc'", kind: KindStr, str: "abc"},
	{in: `"it's"`, kind: KindStr, str: "it's"},
	{in: `'say "hi"'`, kind: KindStr, str: `say "hi"`},
	{in: `'a\'b'`, kind: KindStr, str: "a'b"},
	{in: `'\\\'\"\n\r\t\a\b\f\v\0\101\x41\u00e9\U0001F600\q'`,
		kind: KindStr, str: "\\'\"\n\r\t\a\b\f\v\x00AAé😀\\q"},
	{in: `'\ud800'`, kind: KindStr, str: "\uFFFD"},
	{in: "'日本語'", kind: KindStr, str: "日本語"},
	{in: "''", kind: KindStr, str: ""},
	{in: `b'x\x00\xff\''`, kind: KindBytes, str: "x\x00\xff'"},
	{in: `b"\u00e9"`, kind: KindBytes, str: `\u00e9`},
	{in: "b''", kind: KindBytes, str: ""},
	{in: "...", kind: KindEllipsis},
	{in: "()", kind: KindTuple},
	{in: "(1,)", kind: KindTuple, n: 1},
	{in: "(1, 'two', 3.0)", kind: KindTuple, n: 3},
	{in: "('abc', 1, 2.5, None, [1, 'x'], {'k': b'v'})", kind: KindTuple, n: 6},
	{in: "[]", kind: KindList},
	{in: "[1, [2, [3, [...]]]]", kind: KindList, n: 2},
	{in: "{}", kind: KindDict},
	{in: "{'name': 'x', 'n': 3}", kind: KindDict, n: 2},
	{in: "{1: {'a': {...}}}", kind: KindDict, n: 1},
	{in: "{1, 2}", kind: KindSet, n: 2},
	{in: "{'only'}", kind: KindSet, n: 1},
	{in: " ( 1 , 2 , ) ", kind: KindTuple, n: 2},
	{in: "datetime.datetime(2020, 1, 1, 0, 0)", kind: KindCall, str: "datetime.datetime", n: 5},
	{in: "Decimal('1.5')", kind: KindCall, str: "Decimal", n: 1},
	{in: "ValueError('bad')", kind: KindCall, str: "ValueError", n: 1},
	{in: "ValueError()", kind: KindCall, str: "ValueError"},
	{in: "frozenset({1})", kind: KindCall, str: "frozenset", n: 1},
	{in: "defaultdict(<class 'list'>, {})", kind: KindCall, str: "defaultdict", n: 2},
	{in: "Point(x=1, y=2)", kind: KindOpaque, str: "Point"},
	{in: "datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)", kind: KindOpaque, str: "datetime.datetime"},
	{in: "Weird(a=')', b=[1, (2)])", kind: KindOpaque, str: "Weird"},
	{in: "NotImplemented", kind: KindOpaque},
	{in: "<object object at 0x7f3c2a1b4d00>", kind: KindOpaque},
	{in: "<function <lambda> at 0x7f>", kind: KindOpaque},
	{in: "<class 'int'>", kind: KindOpaque},
	{in: "<re.Match object; span=(0, 1), match='>'>", kind: KindOpaque},
	{in: "<User O'Brien>", kind: KindOpaque},
	{in: "(<User O'Brien>, 'x', <b '>'>)", kind: KindTuple, n: 3},
	{in: "(<class 'ZeroDivisionError'>, ZeroDivisionError('division by zero'), <traceback object at 0x7f3c2a1b4d00>)", kind: KindTuple, n: 3},
	{in: "Ünïcode_näme(1)", kind: KindCall, str: "Ünïcode_näme", n: 1},
}

func TestParseLiteral(t *testing.T) {
	for _, tc := range literalCases {
		v, err := ParseLiteral(tc.in)
		if err != nil {
			t.Errorf("ParseLiteral(%q): %v", tc.in, err)
			continue
		}
		if v.Kind != tc.kind {
			t.Errorf("ParseLiteral(%q).Kind = %v, want %v", tc.in, v.Kind, tc.kind)
		}
		if want := strings.TrimSpace(tc.in); v.Raw != want {
			t.Errorf("ParseLiteral(%q).Raw = %q, want %q", tc.in, v.Raw, want)
		}
		if (tc.str != "" || tc.kind == KindStr || tc.kind == KindBytes) && v.Str != tc.str {
			t.Errorf("ParseLiteral(%q).Str = %q, want %q", tc.in, v.Str, tc.str)
		}
		if n := len(v.Items) + len(v.Pairs); n != tc.n {
			t.Errorf("ParseLiteral(%q) has %d items, want %d", tc.in, n, tc.n)
		}
	}
}

func TestParseLiteralValues(t *testing.T) {
	v, err := ParseLiteral("(-7, 18446744073709551616, 2.5, -inf, {'k': [True]})")
	if err != nil {
		t.Fatal(err)
	}
	it := v.Items
	if it[0].Int != -7 || it[0].Big != nil {
		t.Errorf("-7 read as %+v", it[0])
	}
	if it[1].Big == nil || it[1].Big.String() != "18446744073709551616" {
		t.Errorf("2**64 read as %+v", it[1])
	}
	if it[2].Float != 2.5 || !math.IsInf(it[3].Float, -1) {
		t.Errorf("floats read as %v, %v", it[2].Float, it[3].Float)
	}
	d := it[4]
	if d.Pairs[0].Key.Str != "k" || d.Pairs[0].Value.Items[0].Int != 1 || d.Pairs[0].Value.Raw != "[True]" {
		t.Errorf("dict read as %+v", d)
	}
}

func TestParseLiteralErrors(t *testing.T) {
	for _, in := range []string{
		"", "   ", "(", ")", "'abc", `'abc\'`, "(1)", "1 2", "(1 2)", "[1,,2]", "{1: }", "{1: 2, 3}", "{,}",
		"b'é'", `'\x4'`, `'\xzz'`, `'\U00110000'`, `'\N{DASH}'`, `b'\777'`, "01", "1abc", "1.2.3", "--1", "1e",
		".5", "<unclosed", "f(", "f(]", "a.", "a.(1)", "True False", "\xff", "'\xff'", "(1+)", "(1+2)",
		strings.Repeat("9", maxIntDigits+1),
		strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
		strings.Repeat("f(", maxDepth+1) + strings.Repeat(")", maxDepth+1),
		strings.Repeat("{1: ", maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1),
	} {
		if v, err := ParseLiteral(in); err == nil {
			t.Errorf("ParseLiteral(%.40q) = %v %q, want an error", in, v.Kind, v.Raw)
		}
	}
}

func TestParseLiteralDepth(t *testing.T) {
	in := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := ParseLiteral(in); err != nil {
		t.Errorf("%d nested lists: %v", maxDepth, err)
	}
	in = strings.Repeat("f(", maxDepth) + strings.Repeat(")", maxDepth)
	if _, err := ParseLiteral(in); err != nil {
		t.Errorf("%d nested calls: %v", maxDepth, err)
	}
	// Deep nesting inside <...> is text, not structure.
	in = "<" + strings.Repeat("[", 10000) + ">"
	if _, err := ParseLiteral(in); err != nil {
		t.Errorf("deep brackets in <...>: %v", err)
	}
}

func TestValueConstructors(t *testing.T) {
	for _, tc := range []struct {
		v    Value
		want string
	}{
		{None(), "None"},
		{Bool(true), "True"},
		{Int(-3), "-3"},
		{Float(1e16), "1e+16"},
		{Float(2), "2.0"},
		{Str("it's"), `"it's"`},
		{Bytes([]byte{0, 'a', 0xff}), `b'\x00a\xff'`},
		{Tuple(), "()"},
		{Tuple(Int(1)), "(1,)"},
		{Tuple(Int(1), Str("a")), "(1, 'a')"},
		{List(Str("x"), None()), "['x', None]"},
		{Set(), "set()"},
		{Set(Int(1), Int(2)), "{1, 2}"},
		{Dict(Pair{Str("k"), Bytes([]byte("v"))}), "{'k': b'v'}"},
		{Call("ValueError", Str("bad")), "ValueError('bad')"},
		{Call("datetime.date", Int(2020), Int(1), Int(1)), "datetime.date(2020, 1, 1)"},
	} {
		if tc.v.Raw != tc.want {
			t.Errorf("Raw = %q, want %q", tc.v.Raw, tc.want)
		}
		back, err := ParseLiteral(tc.v.Raw)
		if err != nil || back.Kind != tc.v.Kind && tc.v.Kind != KindSet {
			t.Errorf("ParseLiteral(%q) = %v, %v; want kind %v", tc.v.Raw, back.Kind, err, tc.v.Kind)
		}
	}
}

func TestPyStr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"'text'", "text", true},
		{"b'x'", "b'x'", true},
		{"[1, 'a']", "[1, 'a']", true},
		{"ValueError()", "", true},
		{"ValueError('bad')", "bad", true},
		{"ValueError('a', 2)", "('a', 2)", true},
		{"KeyError('k')", "'k'", true},
		{"RuntimeError(KeyError('k'))", "'k'", true},
		{"ImportError(ValueError(<x>))", "", false},
		{"OSError(2, 'No such file')", "", false},
		{"frozenset({1})", "frozenset({1})", true},
		{"datetime.date(2020, 1, 1)", "", false},
		{"<object object at 0x1>", "", false},
		{"Ellipsis", "Ellipsis", true},
		{"(1+2j)", "(1+2j)", true},
	} {
		v, err := ParseLiteral(tc.in)
		if err != nil {
			t.Fatalf("ParseLiteral(%q): %v", tc.in, err)
		}
		got, ok := v.PyStr()
		if got != tc.want || ok != tc.ok {
			t.Errorf("str(%s) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestTruthy(t *testing.T) {
	for in, want := range map[string]bool{
		"None": false, "False": false, "0": false, "0.0": false, "''": false, "b''": false, "()": false,
		"[]": false, "{}": false, "True": true, "1": true, "99999999999999999999": true, "'a'": true,
		"(0,)": true, "{0}": true, "<x>": true, "f()": true, "nan": true,
	} {
		v, err := ParseLiteral(in)
		if err != nil {
			t.Fatal(err)
		}
		if v.Truthy() != want {
			t.Errorf("bool(%s) = %v, want %v", in, !want, want)
		}
	}
}

package pylog

import (
	"math/big"
	"strings"
	"testing"
)

// formatCases are checked without Python; python_test.go compares many
// more with the real thing.
var formatCases = []struct {
	msg, args string
	want      string // "" with wantErr
	wantErr   string // a substring of the error
}{
	{msg: "hello %s", args: "('world',)", want: "hello world"},
	{msg: "%s %r %a", args: "('é', 'é', 'é')", want: "é 'é' '\\xe9'"},
	{msg: "%(name)s=%(n)03d", args: "{'name': 'x', 'n': 7}", want: "x=007"},
	{msg: "%s", args: "{'a': 1}", want: "{'a': 1}"},
	{msg: "%s|%(a)s", args: "{'a': 1}", want: "{'a': 1}|1"},
	{msg: "no args here", args: "()", want: "no args here"},
	{msg: "%d%% of %s", args: "None", want: "%d%% of %s"},
	{msg: "%s", args: "'bare string'", want: "bare string"},
	{msg: "%5.1f|%-5d|%+.2e|%x|%#o|%c", args: "(2.25, 3, 1234.5, 255, 8, 9731)", want: "  2.2|3    |+1.23e+03|ff|0o10|☃"},
	{msg: "%d", args: "(123456789012345678901234567890,)", want: "123456789012345678901234567890"},
	{msg: "%x", args: "(-18446744073709551616,)", want: "-10000000000000000"},
	{msg: "%s", args: "(ValueError('bad'),)", want: "bad"},
	{msg: "%s", args: "(KeyError('k'),)", want: "'k'"},
	{msg: "%r", args: "(datetime.datetime(2020, 1, 1, 0, 0),)", want: "datetime.datetime(2020, 1, 1, 0, 0)"},
	{msg: "%s", args: "(Decimal('1.5'),)", wantErr: "cannot tell what str() makes of Decimal('1.5')"},
	{msg: "%s", args: "(<object at 0x1>,)", wantErr: "cannot tell what str()"},
	{msg: "%d", args: "(Decimal('1.5'),)", wantErr: "cannot tell what %d makes"},
	{msg: "%f", args: "(<x>,)", wantErr: "cannot tell what %f makes"},
	{msg: "%c", args: "(<x>,)", wantErr: "cannot tell what %c makes"},
	{msg: "%(a)s", args: "OrderedDict([('a', 1)])", wantErr: "cannot look up"},
	{msg: "static", args: "OrderedDict([('a', 1)])", want: "static"},
	{msg: "static", args: "datetime.date(2020, 1, 1)", wantErr: "unless"},
	{msg: "%(a)s", args: "{<Color.RED: 'a'>: 1}", wantErr: "cannot compare"},
	{msg: "%s %s", args: "('one',)", wantErr: "not enough arguments"},
	{msg: "%s", args: "(1, 2)", wantErr: "not all arguments converted"},
	{msg: "%(x)s", args: "{'a': 1}", wantErr: "KeyError: 'x'"},
	{msg: "%(x)s", args: "(1,)", wantErr: "format requires a mapping"},
	{msg: "%q", args: "(1,)", wantErr: "unsupported format character 'q' (0x71) at index 0"},
	{msg: "%", args: "(1,)", wantErr: "incomplete format"},
	{msg: "%(x", args: "{'x': 1}", wantErr: "incomplete format key"},
	{msg: "%d", args: "('1',)", wantErr: "%d format: a real number is required, not str"},
	{msg: "%x", args: "(1.0,)", wantErr: "%x format: an integer is required, not float"},
	{msg: "%*d", args: "('5', 1)", wantErr: "* wants int"},
	{msg: "%99999d", args: "(1,)", wantErr: "width too big"},
	{msg: "%.99999f", args: "(1.0,)", wantErr: "precision too big"},
	{msg: "%*d", args: "(99999, 1)", wantErr: "too big"},
}

func TestFormat(t *testing.T) {
	for _, tc := range formatCases {
		args, err := ParseLiteral(tc.args)
		if err != nil {
			t.Fatalf("ParseLiteral(%q): %v", tc.args, err)
		}
		got, err := Format(tc.msg, args)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("Format(%q, %s): %v", tc.msg, tc.args, err)
		case tc.wantErr == "" && got != tc.want:
			t.Errorf("Format(%q, %s) = %q, want %q", tc.msg, tc.args, got, tc.want)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("Format(%q, %s) = %q, %v; want error %q", tc.msg, tc.args, got, err, tc.wantErr)
		}
	}
}

// TestFormatConstructed formats values built the way the pickle decoder
// builds them, not read from a repr.
func TestFormatConstructed(t *testing.T) {
	big1, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	args := Tuple(Str("it's"), BigInt(big1), Float(0.1), List(Str("a"), None()), Call("ValueError", Str("x")))
	got, err := Format("%r %d %s %s %s", args)
	want := `"it's" -123456789012345678901234567890 0.1 ['a', None] x`
	if err != nil || got != want {
		t.Errorf("Format = %q, %v; want %q", got, err, want)
	}
}

func TestFormatLimits(t *testing.T) {
	big := "'" + strings.Repeat("x", 100000) + "'"
	args, err := ParseLiteral("{'a': " + big + "}")
	if err != nil {
		t.Fatal(err)
	}
	limit := len(args.Raw) + 100 + maxGrowth
	if out, err := Format(strings.Repeat("%(a)s", 20), args); err != nil || len(out) != limit {
		t.Errorf("20 copies of a 100 kB value: %d bytes, %v; want cut at %d", len(out), err, limit)
	}
	if out, err := Format(strings.Repeat("%(a)s", 5), args); err != nil || len(out) != 500000 {
		t.Errorf("5 copies of a 100 kB value: %d bytes, %v", len(out), err)
	}
}

func TestFormatLimit(t *testing.T) {
	for _, tc := range []struct {
		msg, args string
		limit     int
		want      string
		cut       bool
	}{
		{"%65536s|" + strings.Repeat("%65536s", 99), "(" + strings.Repeat("'x', ", 100) + ")", 2000, strings.Repeat(" ", 2000), true},
		{"ab%sd", "('c',)", 4, "abcd", false},
		{"ab%sd", "('c',)", 3, "abc", true},
		{"%s", "('日本',)", 4, "日", true},
		{"%d%%", "(12,)", 3, "12%", false},
		{"%d%%", "(12,)", 2, "12", true},
		{"%-10s|", "('a',)", 5, "a    ", true},
		{"%010d", "(7,)", 4, "0000", true},
		{"%s %s", "('aaaa', 1, 2)", 2, "aa", true}, // cut before Python's error would show
		{"%s %s", "('a', 1, 2)", 100, "", false},   // not all arguments converted
		{"no args at all, just text", "()", 6, "no arg", true},
		{"%(a)s%(a)s%(a)s", "{'a': 'xyz'}", 7, "xyzxyzx", true},
		{"00\xab%a", "('',)", 2, "00", true}, // found by FuzzFormatLimit: nothing after the cut
		{"é%s", "('日本',)", 4, "é", true},
		{"\xab\xab\xab\xab\xab%s", "('x',)", 3, "\xab\xab\xab", true},
	} {
		args, err := ParseLiteral(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		got, cut, err := FormatLimit(tc.msg, args, tc.limit)
		if tc.want == "" && !tc.cut {
			if err == nil {
				t.Errorf("FormatLimit(%q, %s, %d) = %q, want an error", tc.msg, tc.args, tc.limit, got)
			}
			continue
		}
		if err != nil || got != tc.want || cut != tc.cut {
			t.Errorf("FormatLimit(%q, %s, %d) = %q, %v, %v; want %q, %v", tc.msg, tc.args, tc.limit, got, cut, err, tc.want, tc.cut)
		}
	}
}

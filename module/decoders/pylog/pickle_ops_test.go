package pylog

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// opcodeCases are pickles written by hand for the opcodes and corner
// cases Python's pickler rarely or never writes. want is the repr() of
// the result, or the start of the error after "err: ". differs marks
// the documented places where DecodePickle deliberately parts from
// pickle.loads.
var opcodeCases = []struct {
	name, in, want string
	differs        bool
}{
	{name: "NONE", in: "N.", want: "None"},
	{name: "NEWTRUE", in: "\x88.", want: "True"},
	{name: "NEWFALSE", in: "\x89.", want: "False"},
	{name: "INT True", in: "I01\n.", want: "True"},
	{name: "INT False", in: "I00\n.", want: "False"},
	{name: "INT", in: "I42\n.", want: "42"},
	{name: "INT negative", in: "I-7\n.", want: "-7"},
	{name: "INT big", in: "I123456789012345678901234567890\n.", want: "123456789012345678901234567890"},
	{name: "LONG", in: "L123L\n.", want: "123"},
	{name: "LONG negative big", in: "L-99999999999999999999999L\n.", want: "-99999999999999999999999"},
	{name: "LONG without L", in: "L5\n.", want: "5"},
	{name: "LONG1 empty", in: "\x8a\x00.", want: "0"},
	{name: "LONG1 -1", in: "\x8a\x01\xff.", want: "-1"},
	{name: "LONG1 -32768", in: "\x8a\x02\x00\x80.", want: "-32768"},
	{name: "LONG1 2**64", in: "\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.", want: "18446744073709551616"},
	{name: "LONG4", in: "\x8b\x01\x00\x00\x00\x7f.", want: "127"},
	{name: "BININT -1", in: "J\xff\xff\xff\xff.", want: "-1"},
	{name: "BININT1", in: "K\xff.", want: "255"},
	{name: "BININT2", in: "M\xff\xff.", want: "65535"},
	{name: "FLOAT", in: "F1.5\n.", want: "1.5"},
	{name: "FLOAT inf", in: "Finf\n.", want: "inf"},
	{name: "FLOAT nan", in: "Fnan\n.", want: "nan"},
	{name: "FLOAT -0", in: "F-0.0\n.", want: "-0.0"},
	{name: "FLOAT overflow", in: "F1e400\n.", want: "err: pickle opcode FLOAT 'F' at offset 0: float 1e400 out of range"},
	{name: "FLOAT underflow", in: "F1e-400\n.", want: "0.0"},
	{name: "BINFLOAT", in: "G?\xb9\x99\x99\x99\x99\x99\x9a.", want: "0.1"},
	{name: "STRING escapes", in: "S'a\\'b\\n\\x41\\101\\q'\n.", want: `"a'b\nAA\\q"`},
	{name: "STRING double quotes", in: "S\"dq\"\n.", want: "'dq'"},
	{name: "STRING UTF-8", in: "S'caf\xc3\xa9'\n.", want: "'café'", differs: true},
	{name: "BINSTRING", in: "T\x03\x00\x00\x00abc.", want: "'abc'"},
	{name: "SHORT_BINSTRING", in: "U\x02hi.", want: "'hi'"},
	{name: "UNICODE", in: "Vcaf\xe9 \\u2603 \\U0001f600 \\\\u0041 \\x\n.", want: `'café ☃ 😀 \\\\u0041 \\x'`},
	{name: "BINUNICODE", in: "X\x03\x00\x00\x00\xe2\x98\x83.", want: "'☃'"},
	{name: "BINUNICODE invalid UTF-8", in: "X\x01\x00\x00\x00\xff.", want: "'\uFFFD'", differs: true},
	{name: "SHORT_BINUNICODE", in: "\x8c\x02hi.", want: "'hi'"},
	{name: "BINUNICODE8", in: "\x8d\x02\x00\x00\x00\x00\x00\x00\x00hi.", want: "'hi'"},
	{name: "SHORT_BINBYTES", in: "C\x02\x00\xff.", want: `b'\x00\xff'`},
	{name: "BINBYTES", in: "B\x01\x00\x00\x00x.", want: "b'x'"},
	{name: "BINBYTES8", in: "\x8e\x01\x00\x00\x00\x00\x00\x00\x00x.", want: "b'x'"},
	{name: "_codecs.encode", in: "c_codecs\nencode\n(X\x03\x00\x00\x00\xc3\xbfaX\x06\x00\x00\x00latin1tR.", want: `b'\xffa'`},
	{name: "bytes()", in: "c__builtin__\nbytes\n)R.", want: "b''"},
	{name: "TUPLE", in: "(I1\nI2\nt.", want: "(1, 2)"},
	{name: "EMPTY_TUPLE", in: ").", want: "()"},
	{name: "TUPLE1", in: "K\x01\x85.", want: "(1,)"},
	{name: "TUPLE2", in: "K\x01K\x02\x86.", want: "(1, 2)"},
	{name: "TUPLE3", in: "K\x01K\x02K\x03\x87.", want: "(1, 2, 3)"},
	{name: "LIST", in: "(I1\nl.", want: "[1]"},
	{name: "DICT", in: "(S'a'\nI1\nd.", want: "{'a': 1}"},
	{name: "APPEND", in: "]K\x01a.", want: "[1]"},
	{name: "SETITEM", in: "}S'k'\nK\x01s.", want: "{'k': 1}"},
	{name: "equal keys are one key", in: "}(K\x01S'a'\nG?\xf0\x00\x00\x00\x00\x00\x00S'b'\n\x88S'c'\nu.", want: "{1: 'c'}"},
	{name: "-0.0 and 0 are one key", in: "(K\x00K\x01F-0.0\nK\x02d.", want: "{0: 2}"},
	{name: "tuple keys", in: "}(K\x01K\x02\x86K\x01K\x01K\x02\x86K\x02u.", want: "{(1, 2): 2}"},
	{name: "DUP", in: "]2a.", want: "[[...]]"},
	{name: "dict in itself", in: "}q\x00S'self'\nh\x00s.", want: "{'self': {...}}"},
	{name: "POP", in: "K\x01K\x020.", want: "1"},
	{name: "POP_MARK", in: "K\x01(K\x02K\x031.", want: "1"},
	{name: "POP of a MARK", in: "K\x01(0.", want: "1"},
	{name: "FRAME and MEMOIZE", in: "\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00]\x94h\x00a.", want: "[[...]]"},
	{name: "PUT and GET", in: "(I1\np0\ng0\nl.", want: "[1, 1]"},
	{name: "LONG_BINPUT far", in: "I7\nr\x00\x00\x01\x00j\x00\x00\x01\x00\x86.", want: "(7, 7)"},
	{name: "overwritten memo", in: "K\x01q\x00K\x02q\x00h\x00\x86.", want: "(2, 2)"},
	{name: "STOP leaves the rest", in: "K\x01K\x02.", want: "2"},

	{name: "empty", in: "", want: "err: pickle ends without STOP"},
	{name: "no STOP", in: "N", want: "err: pickle ends without STOP"},
	{name: "STOP on empty stack", in: ".", want: "err: pickle opcode STOP '.' at offset 0: stack underflow"},
	{name: "STOP on a MARK", in: "(.", want: "err: pickle opcode STOP '.' at offset 1: stack underflow"},
	{name: "bytes after STOP", in: "NN.x", want: "err: pickle: 1 bytes after STOP", differs: true},
	{name: "truncated BINUNICODE", in: "X\xff\xff\xff\xff.", want: "err: pickle opcode BINUNICODE 'X' at offset 0: 4294967295 bytes announced"},
	{name: "negative BINSTRING", in: "T\xff\xff\xff\xff.", want: "err: pickle opcode BINSTRING 'T' at offset 0: negative length"},
	{name: "negative LONG4", in: "\x8b\xff\xff\xff\xff.", want: "err: pickle opcode LONG4 0x8b at offset 0: negative length"},
	{name: "odd SETITEMS", in: "}(K\x01u.", want: "err: pickle opcode SETITEMS 'u' at offset 4: odd number"},
	{name: "unhashable key", in: "}(]K\x01u.", want: "err: pickle opcode SETITEMS 'u' at offset 5: unhashable type: 'list'"},
	{name: "unhashable key in a tuple", in: "}(]\x85K\x01u.", want: "err: pickle opcode SETITEMS 'u' at offset 6: unhashable type: 'list'"},
	{name: "APPEND to an int", in: "K\x01K\x01a.", want: "err: pickle opcode APPEND 'a' at offset 4: cannot append to int"},
	{name: "SETITEM on a list", in: "]K\x01K\x01s.", want: "err: pickle opcode SETITEM 's' at offset 5: cannot set items of list"},
	{name: "APPEND under a MARK", in: "](K\x01a.", want: "err: pickle opcode APPEND 'a' at offset 4: stack underflow"},
	{name: "missing memo", in: "h\x05.", want: "err: pickle opcode BINGET 'h' at offset 0: memo key 5 not found"},
	{name: "PUT on empty stack", in: "q\x00.", want: "err: pickle opcode BINPUT 'q' at offset 0: stack underflow"},
	{name: "negative PUT", in: "N\np-1\n.", want: "err: pickle opcode unknown 0x0a at offset 1"},
	{name: "PUT not a number", in: "Np-1\n.", want: "err: pickle opcode PUT 'p' at offset 1: invalid memo key"},
	{name: "protocol 6", in: "\x80\x06N.", want: "err: pickle opcode PROTO 0x80 at offset 0: unsupported pickle protocol 6"},
	{name: "bad INT", in: "I1x\n.", want: "err: pickle opcode INT 'I' at offset 0: invalid integer"},
	{name: "bad FLOAT", in: "Fxyz\n.", want: "err: pickle opcode FLOAT 'F' at offset 0: invalid float"},
	{name: "hex FLOAT", in: "F0x1p3\n.", want: "err: pickle opcode FLOAT 'F' at offset 0: invalid float"},
	{name: "unquoted STRING", in: "S'abc\n.", want: "err: pickle opcode STRING 'S' at offset 0: the STRING opcode argument must be quoted"},
	{name: "bad \\x in STRING", in: "S'\\x4'\n.", want: "err: pickle opcode STRING 'S' at offset 0: invalid \\x escape"},
	{name: "truncated \\u", in: "Vab\\u12\n.", want: "err: pickle opcode UNICODE 'V' at offset 0: truncated \\u escape"},
	{name: "\\U out of range", in: "V\\U00110000\n.", want: "err: pickle opcode UNICODE 'V' at offset 0: \\U escape out of range"},
	{name: "line not terminated", in: "I1", want: "err: pickle opcode INT 'I' at offset 0: line not terminated"},
	{name: "FRAME past the end", in: "\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", want: "err: pickle opcode FRAME 0x95 at offset 0: frame of 255 bytes"},
	{name: "TUPLE2 short", in: "K\x01\x86.", want: "err: pickle opcode TUPLE2 0x86 at offset 2: stack underflow"},
	{name: "TUPLE without MARK", in: "K\x01t.", want: "err: pickle opcode TUPLE 't' at offset 2: no MARK"},
	{name: "latin1 of a non-Latin-1 str", in: "c_codecs\nencode\n(X\x03\x00\x00\x00\xe2\x98\x83X\x06\x00\x00\x00latin1tR.",
		want: "err: pickle opcode REDUCE 'R' at offset 37: 'latin-1' codec can't encode character U+2603"},
}

// TestDecodePickleOpcodes checks each case, then has Python load them
// all to confirm the expectations are Python's.
func TestDecodePickleOpcodes(t *testing.T) {
	for _, tc := range opcodeCases {
		v, err := DecodePickle([]byte(tc.in), PickleLimits{})
		if want, ok := strings.CutPrefix(tc.want, "err: "); ok {
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("%s: DecodePickle(%q) = %s, %v; want error %q", tc.name, tc.in, v.Raw, err, want)
			}
			continue
		}
		if err != nil || v.Raw != tc.want {
			t.Errorf("%s: DecodePickle(%q) = %s, %v; want %s", tc.name, tc.in, v.Raw, err, tc.want)
		}
	}

	const script = `
import json, pickle, sys
out = []
for h in json.load(sys.stdin):
    try:
        out.append(['ok', repr(pickle.loads(bytes.fromhex(h)))])
    except Exception as e:
        out.append(['err', type(e).__name__ + ': ' + str(e)])
print(json.dumps(out))
`
	in := make([]string, len(opcodeCases))
	for i, tc := range opcodeCases {
		in[i] = hex.EncodeToString([]byte(tc.in))
	}
	var py [][2]string
	runPython(t, script, in, &py)
	for i, tc := range opcodeCases {
		if tc.differs {
			continue
		}
		pyErr := py[i][0] == "err"
		wantErr := strings.HasPrefix(tc.want, "err: ")
		switch {
		case pyErr != wantErr:
			t.Errorf("%s: Python says %s %s, we want %s", tc.name, py[i][0], py[i][1], tc.want)
		case !pyErr && py[i][1] != tc.want:
			t.Errorf("%s: Python's repr is %s, we want %s", tc.name, py[i][1], tc.want)
		}
	}
}

// randomScript pickles random plain data at every protocol and prints
// the pickles with their repr(), for a seed given as argv[1].
const randomScript = `
import json, pickle, random, sys
rnd = random.Random(int(sys.argv[1]))
CHARS = 'abcxyz019 _-\'"\\\n\t\r\x00\x07\x1b\x7f\x80\x9f\xa0éß€☃日本\u200b\u2028\ufeff😀𝄞'

def rstr():
    return ''.join(rnd.choice(CHARS) for _ in range(rnd.randrange(0, 12)))

def rbytes():
    return bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 12)))

def rint():
    return rnd.choice([0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, 2**31, -2**31, -2**31 - 1,
                       2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**64, rnd.randrange(-2**200, 2**200),
                       rnd.randrange(-1000, 1000)])

def rfloat():
    return rnd.choice([0.0, -0.0, 0.1, 1 / 3, 1e16, 1e-5, 1e22, 5e-324, 1.7976931348623157e308, 100.0,
                       float('inf'), float('-inf'), float('nan'), rnd.random() * 10 ** rnd.randrange(-30, 30)])

def rscalar():
    return rnd.choice([None, True, False, rint(), rfloat(), rstr(), rbytes()])

def rkey():
    k = rnd.randrange(7)
    if k == 6:
        return tuple(rkey() for _ in range(rnd.randrange(3)))
    return [rstr, rint, rfloat, rbytes, lambda: None, lambda: rnd.random() < 0.5][k]()

def rval(depth=0):
    k = rnd.randrange(10 if depth < 4 else 6)
    if k < 6:
        return rscalar()
    n = rnd.randrange(6)
    if k == 6:
        return [rval(depth + 1) for _ in range(n)]
    if k == 7:
        return tuple(rval(depth + 1) for _ in range(n))
    if k == 8:
        return {rkey(): rval(depth + 1) for _ in range(n)}
    shared = [rval(depth + 1)]
    x = [shared, {'again': shared}]
    if rnd.random() < 0.5:
        shared.append(x)
    return x

out = []
for _ in range(int(sys.argv[2])):
    v = rval()
    for proto in range(6):
        out.append([proto, pickle.dumps(v, proto).hex(), repr(v)])
print(json.dumps(out))
`

// TestDecodePickleMatchesPython decodes random plain data pickled by
// Python at protocols 0 to 5 and compares with Python's repr().
func TestDecodePickleMatchesPython(t *testing.T) {
	n := "300"
	if testing.Short() {
		n = "50"
	}
	var cases []struct {
		Proto int
		Hex   string
		Repr  string
	}
	seed := strconv.FormatInt(time.Now().UnixNano()%1_000_000, 10)
	out := runScript(t, randomScript, seed, n)
	var raw [][3]any
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	for _, r := range raw {
		cases = append(cases, struct {
			Proto int
			Hex   string
			Repr  string
		}{int(r[0].(float64)), r[1].(string), r[2].(string)})
	}
	t.Logf("seed %s: %d pickles", seed, len(cases))
	failed := 0
	for _, c := range cases {
		data := mustHex(t, c.Hex)
		v, err := DecodePickle(data, PickleLimits{})
		if err != nil || v.Raw != c.Repr {
			t.Errorf("protocol %d pickle %q:\n got %s, %v\nwant %s", c.Proto, data, v.Raw, err, c.Repr)
			if failed++; failed > 5 {
				t.FailNow()
			}
		}
	}
}

func TestDecodePickleLimits(t *testing.T) {
	repeat := func(s string, n int) string { return strings.Repeat(s, n) }
	nested := func(n int) string { return repeat("]", n) + repeat("a", n-1) + "." }
	// doubling makes a list of two references to the previous one, n
	// times: 2**n leaves from a few bytes per level.
	doubling := func(n int, last string) string {
		var b strings.Builder
		b.WriteString("]q\x00")
		for i := range n {
			b.WriteString("(h" + string(rune(i)) + "h" + string(rune(i)) + last + "q" + string(rune(i+1)))
		}
		b.WriteString(".")
		return b.String()
	}
	// keyDoubling does the same with tuples, and uses the last as a key.
	keyDoubling := func(n int) string {
		var b strings.Builder
		b.WriteString("}Nq\x000")
		for i := range n {
			b.WriteString("(h" + string(rune(i)) + "h" + string(rune(i)) + "tq" + string(rune(i+1)) + "0")
		}
		b.WriteString("h" + string(rune(n)) + "Ns.")
		return b.String()
	}
	for _, tc := range []struct {
		name    string
		in      string
		lim     PickleLimits
		wantErr string
	}{
		{name: "bytes", in: "N.", lim: PickleLimits{MaxBytes: 1}, wantErr: "pickle of 2 bytes exceeds the limit of 1"},
		{name: "stack", in: repeat("N", 11) + ".", lim: PickleLimits{MaxStack: 10}, wantErr: "more than 10 values held at once"},
		{name: "marks count", in: repeat("(", 11) + "N.", lim: PickleLimits{MaxStack: 10}, wantErr: "more than 10 values held at once"},
		{name: "memo", in: "N" + repeat("p1\np2\np3\np4\n", 1) + ".", lim: PickleLimits{MaxMemo: 3}, wantErr: "more than 3 memo entries"},
		{name: "memo by MEMOIZE", in: "N\x94\x94\x94\x94.", lim: PickleLimits{MaxMemo: 3}, wantErr: "more than 3 memo entries"},
		{name: "list items", in: "]" + repeat("Na", 11) + ".", lim: PickleLimits{MaxItems: 10}, wantErr: "list of more than 10 items"},
		{name: "list items by APPENDS", in: "](" + repeat("N", 11) + "e.", lim: PickleLimits{MaxItems: 10}, wantErr: "list of more than 10 items"},
		{name: "tuple items", in: "(" + repeat("N", 11) + "t.", lim: PickleLimits{MaxItems: 10}, wantErr: "more than 10 items"},
		{name: "dict entries", in: "}(" + repeat("I1\nN", 1) + repeat("I2\nNI3\nNI4\nN", 1) + "u.", lim: PickleLimits{MaxItems: 3}, wantErr: "dict of more than 3 entries"},
		{name: "values", in: repeat("N0", 11) + "N.", lim: PickleLimits{MaxValues: 10}, wantErr: "more than 10 objects"},
		{name: "depth", in: nested(65), wantErr: "pickle: containers nested deeper than 64"},
		{name: "depth set", in: nested(11), lim: PickleLimits{MaxDepth: 10}, wantErr: "nested deeper than 10"},
		{name: "shared references", in: doubling(60, "l"), wantErr: "pickle: repr() of the result longer than"},
		{name: "shared references in a key", in: keyDoubling(60), wantErr: "dict key: repr() of the result longer than"},
		{name: "int digits", in: "I" + repeat("9", 4301) + "\n.", wantErr: "integer of 4301 digits is too large"},
		{name: "LONG4 bytes", in: "\x8b\x00\x10\x00\x00" + repeat("\x01", 4096) + ".", wantErr: "int of 4096 bytes is too large"},
	} {
		start := time.Now()
		v, err := DecodePickle([]byte(tc.in), tc.lim)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: DecodePickle = %s, %v; want error %q", tc.name, intake.Brief(v.Raw), err, tc.wantErr)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %v", tc.name, d)
		}
	}
	// Just under the limits passes.
	for _, tc := range []struct {
		in  string
		lim PickleLimits
	}{
		{nested(64), PickleLimits{}},
		{"]" + repeat("Na", 10) + ".", PickleLimits{MaxItems: 10}},
		{repeat("N", 10) + ".", PickleLimits{MaxStack: 10}},
		{doubling(10, "l"), PickleLimits{}},
	} {
		if _, err := DecodePickle([]byte(tc.in), tc.lim); err != nil {
			t.Errorf("DecodePickle(%q): %v", intake.Brief(tc.in), err)
		}
	}
}

package pylog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/testtool"
	"github.com/caddy-applog/caddy-applog/module/intake"
)

// typicalFrame is what Python 3.11's SocketHandler sends for the record
// of typicalForm: the 4-byte length, then pickle.dumps(dict, 1).
const typicalFrame = "\x00\x00\x021}q\x00(X\x04\x00\x00\x00nameq\x01X\x07\x00\x00\x00app.webq\x02X\x03\x00\x00\x00" +
	"msgq\x03X0\x00\x00\x00user alice logged in from 10.0.0.1 after 3 triesq\x04X\x04\x00\x00\x00" +
	"argsq\x05NX\x09\x00\x00\x00levelnameq\x06X\x04\x00\x00\x00INFOq\x07X\x07\x00\x00\x00levelno" +
	"q\x08K\x14X\x08\x00\x00\x00pathnameq\x09X\x11\x00\x00\x00/srv/app/views.pyq\x0aX\x08\x00\x00" +
	"\x00filenameq\x0bX\x08\x00\x00\x00views.pyq\x0cX\x06\x00\x00\x00moduleq\x0dX\x05\x00\x00\x00" +
	"viewsq\x0eX\x08\x00\x00\x00exc_infoq\x0fNX\x08\x00\x00\x00exc_textq\x10NX\x0a\x00\x00\x00st" +
	"ack_infoq\x11NX\x06\x00\x00\x00linenoq\x12K*X\x08\x00\x00\x00funcNameq\x13X\x05\x00\x00\x00" +
	"loginq\x14X\x07\x00\x00\x00createdq\x15GA\xdaH\x07VG\xe6\xb7X\x05\x00\x00\x00msecsq\x16G@^\xc0" +
	"\x00\x00\x00\x00\x00X\x0f\x00\x00\x00relativeCreatedq\x17G@\xb3\x94X~`\x00\x00X\x06\x00\x00" +
	"\x00threadq\x18L140234234234112L\x0aX\x0a\x00\x00\x00threadNameq\x19X\x0a\x00\x00\x00MainTh" +
	"readq\x1aX\x0b\x00\x00\x00processNameq\x1bX\x0b\x00\x00\x00MainProcessq\x1cX\x07\x00\x00\x00" +
	"processq\x1dM\x92\x10X\x0a\x00\x00\x00request_idq\x1eX\x07\x00\x00\x00abc-123q\x1fu."

// pythonTB is python3 for tests, fuzz targets and benchmarks: skipped
// without it, except in CI.
func pythonTB(tb testing.TB) string {
	tb.Helper()
	return testtool.Require(tb, "python3")
}

// runScript runs a Python script with arguments and returns its stdout.
func runScript(tb testing.TB, script string, args ...string) []byte {
	tb.Helper()
	py := pythonTB(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{"-c", script}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONIOENCODING=utf-8", "PYTHONHASHSEED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("python3: %v\n%s", err, stderr.String())
	}
	return out
}

// recordsScript makes LogRecords the way an application does, pickles
// them with SocketHandler.makePickle into the file named by argv[1],
// and prints, for each, what Python reads back from those very bytes:
// repr() of the dict, the fields Record takes, and the attributes
// FromPickle is documented to make, rendered by the documented rules.
const recordsScript = `
import decimal, json, logging, logging.handlers, math, pickle, sys

h = logging.handlers.SocketHandler('localhost', 9)
logging.addLevelName(15, 'VERBOSE')

def mk(name, level, msg, args=(), exc_info=None, extra=None, sinfo=None, func=None):
    return logging.getLogger(name).makeRecord(
        name, level, '/srv/app/views.py', 42, msg, args, exc_info, func=func, extra=extra, sinfo=sinfo)

shared = [1, 2]
selfref = [1]
selfref.append(selfref)
recs = [
    mk('app.web', logging.INFO, 'user %s logged in from %s after %d tries', ('alice', '10.0.0.1', 3),
       func='login', extra={'request_id': 'abc-123'}),
    mk('app.extra', logging.WARNING, 'extras %r', ([1, 'a'],), extra={
        'b': b'\x00ab\xff"\'', 'empty': b'', 'b2': b'zz', 'b_all': bytes(range(256)),
        'yes': True, 'no': False, 'none': None, 'emptystr': '',
        'lst': [1, 'x', (2, 3), [], {}, (), b'in'], 'tup': (1,), 'nested': {'a': {'b': [{'c': None}]}},
        'keys': {1: 'int', 2.5: 'float', None: 'none', (1, 'a'): 'tuple', b'k': 'bytes', False: 'bool'},
        'big': 2**70, 'bigneg': -2**100, 'i64max': 2**63 - 1, 'i64min': -2**63, 'i64over': 2**63,
        'i32edge': 2**31, 'neg': -5, 'zero': 0, 'b255': 255, 'b256': 256, 'b65535': 65535, 'b65536': 65536,
        'uni': 'héllo ☃ 😀 日本語 \u200b \xa0 \x7f',
        'floats': [0.1, 1e16, 1e-5, -0.0, 1.5e300, 5e-324, 100.0, float('inf'), float('nan')],
        'inf': float('inf'), 'nan': float('nan'), 'ninf': float('-inf'), 'f': 2.5, 'fint': 3.0,
        'shared1': shared, 'shared2': shared, 'selfref': selfref,
        'quote"key': 'v', 'ctl': 'a\x01b\x1fc\td\ne',
    }),
    mk('app.dictargs', 25, 'custom level %(n)s', ({'n': 'ñ'},)),
    mk('app.stack', 15, 'verbose with stack', sinfo='Stack (most recent call last):\n  File "x.py", line 1'),
    mk('café.ünï', logging.CRITICAL, 'multi\nline\ttab "quotes" \'single\' \\ backslash \x00 nul \u2028'),
    mk('root', logging.DEBUG, 'big', extra={'text': 'x' * 100000, 'items': list(range(3000)),
                                         'table': {'k%d' % i: i for i in range(2500)}}),
]
try:
    {}['missing']
except KeyError:
    recs.append(mk('app.err', logging.ERROR, 'failed %d', (7,), exc_info=sys.exc_info()))

def j(v, busy=frozenset()):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, (list, tuple, dict)):
        if id(v) in busy:
            return {list: '[...]', tuple: '(...)', dict: '{...}'}[type(v)]
        busy = busy | {id(v)}
        if isinstance(v, dict):
            return {(k if isinstance(k, str) else repr(k)): j(x, busy) for k, x in v.items()}
        return [j(x, busy) for x in v]
    return repr(v)

def attr(v):
    if isinstance(v, str): return ['string', v]
    if v is None: return ['null', '']
    if isinstance(v, bool): return ['bool', str(v).lower()]
    if isinstance(v, int):
        return ['int', str(v)] if -2**63 <= v < 2**63 else ['string', repr(v)]
    if isinstance(v, float):
        return ['float', repr(v)] if math.isfinite(v) else ['string', repr(v)]
    if isinstance(v, (list, tuple, dict)):
        return ['json', json.dumps(j(v), ensure_ascii=False, separators=(',', ':'), allow_nan=False)]
    return ['string', repr(v)]

DROP = {'name', 'msg', 'levelname', 'levelno', 'created', 'msecs', 'message', 'asctime'}
out = []
with open(sys.argv[1], 'wb') as f:
    for r in recs:
        frame = h.makePickle(r)
        f.write(frame)
        d = pickle.loads(frame[4:])
        attrs = []
        for k, v in d.items():
            if k in DROP or k == 'args' and not v: continue
            if k in ('exc_text', 'stack_info') and not v: continue
            if k == 'exc_info' and (not v or d.get('exc_text')): continue
            if k == 'taskName' and v is None: continue
            attrs.append([k] + attr(v))
        out.append({'repr': repr(d), 'name': d['name'], 'msg': d['msg'], 'levelno': d['levelno'],
                    'levelname': d['levelname'], 'exc_text': d['exc_text'],
                    'created_ns': str(int(decimal.Decimal(repr(d['created'])) * 10**9)),
                    'attrs': attrs})
print(json.dumps(out))
`

type pickledRecord struct {
	Repr      string     `json:"repr"`
	Name      string     `json:"name"`
	Msg       string     `json:"msg"`
	LevelNo   int        `json:"levelno"`
	LevelName string     `json:"levelname"`
	ExcText   *string    `json:"exc_text"`
	CreatedNs string     `json:"created_ns"`
	Attrs     [][]string `json:"attrs"`
}

// pythonFrames runs recordsScript and returns the frames it wrote and
// what Python read from them.
func pythonFrames(tb testing.TB) ([]byte, []pickledRecord) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "frames.bin")
	out := runScript(tb, recordsScript, path)
	var want []pickledRecord
	if err := json.Unmarshal(out, &want); err != nil {
		tb.Fatalf("decoding python3 output: %v\n%s", err, out)
	}
	frames, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return frames, want
}

func TestPickleRecordsFromPython(t *testing.T) {
	frames, want := pythonFrames(t)
	sc := NewSocketScanner(bytes.NewReader(frames), 0)
	now := time.Unix(1, 0)
	i := 0
	for ; sc.Scan(); i++ {
		if i >= len(want) {
			t.Fatalf("more frames than the %d records Python wrote", len(want))
		}
		w := want[i]
		t.Run(w.Name+"/"+strconv.Itoa(i), func(t *testing.T) {
			v, err := DecodePickle(sc.Bytes(), PickleLimits{})
			if err != nil {
				t.Fatal(err)
			}
			if v.Raw != w.Repr {
				t.Errorf("repr differs from Python's\n got %s\nwant %s", intake.Brief(v.Raw), intake.Brief(w.Repr))
				reportDiff(t, v.Raw, w.Repr)
			}
			rec, err := FromPickle(v, now)
			if err != nil {
				t.Fatal(err)
			}
			checkRecord(t, rec, w)
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(want) {
		t.Errorf("read %d frames, Python wrote %d", i, len(want))
	}
}

func reportDiff(t *testing.T, got, want string) {
	t.Helper()
	n := 0
	for n < len(got) && n < len(want) && got[n] == want[n] {
		n++
	}
	from := max(0, n-40)
	t.Errorf("first difference at byte %d:\n got ...%s\nwant ...%s", n, got[from:min(len(got), n+40)], want[from:min(len(want), n+40)])
}

func checkRecord(t *testing.T, rec intake.Record, w pickledRecord) {
	t.Helper()
	if rec.Logger != w.Name || rec.Message != w.Msg || rec.LevelNo != w.LevelNo || rec.LevelName != w.LevelName {
		t.Errorf("record %q %q %d %q, want %q %q %d %q",
			rec.Logger, rec.Message, rec.LevelNo, rec.LevelName, w.Name, w.Msg, w.LevelNo, w.LevelName)
	}
	if ns := strconv.FormatInt(rec.Time.UnixNano(), 10); ns != w.CreatedNs {
		t.Errorf("Time = %s ns, want %s", ns, w.CreatedNs)
	}
	if len(rec.Attrs) != len(w.Attrs) {
		t.Errorf("%d attrs %v, want %d", len(rec.Attrs), attrKeys(rec), len(w.Attrs))
	}
	for i := range min(len(rec.Attrs), len(w.Attrs)) {
		a, want := rec.Attrs[i], w.Attrs[i]
		if a.Key != want[0] {
			t.Errorf("attr %d is %q, want %q", i, a.Key, want[0])
			continue
		}
		kind, text := attrText(a.Value)
		if kind != want[1] {
			t.Errorf("attr %s: kind %s, want %s", a.Key, kind, want[1])
			continue
		}
		if kind == "float" {
			f, err := strconv.ParseFloat(want[2], 64)
			if err != nil || math.Float64bits(f) != math.Float64bits(a.Value.Float) {
				t.Errorf("attr %s = %v, want %s", a.Key, a.Value.Float, want[2])
			}
			continue
		}
		if text != want[2] {
			t.Errorf("attr %s = %s, want %s", a.Key, intake.Brief(text), intake.Brief(want[2]))
		}
		if kind == "json" && !json.Valid([]byte(text)) {
			t.Errorf("attr %s is not valid JSON: %s", a.Key, intake.Brief(text))
		}
	}
	if w.ExcText != nil {
		if got := attrMap(rec)["exc_text"]; got != *w.ExcText || !strings.Contains(got, "KeyError: 'missing'") {
			t.Errorf("exc_text = %q, want %q", got, *w.ExcText)
		}
	}
}

// attrText names an attribute's kind as recordsScript does.
func attrText(v intake.Value) (string, string) {
	switch v.Kind {
	case intake.KindInt:
		return "int", v.String()
	case intake.KindFloat:
		return "float", v.String()
	case intake.KindBool:
		return "bool", v.String()
	case intake.KindNull:
		return "null", ""
	case intake.KindJSON:
		return "json", v.Str
	}
	return "string", v.Str
}

// TestPickleDecoderReuse checks that a decoder kept from one pickle to
// the next, through errors, decodes each as a new one would.
func TestPickleDecoderReuse(t *testing.T) {
	inputs := []string{typicalFrame[4:]}
	for _, tc := range opcodeCases {
		inputs = append(inputs, tc.in)
	}
	var long strings.Builder
	long.WriteString("]")
	for i := range 1000 {
		long.WriteString("(I" + strconv.Itoa(i) + "\nS'x'\nI1\nd")
		long.WriteString("a")
	}
	long.WriteString(".")
	inputs = append(inputs, long.String(), typicalFrame[4:])
	d := PickleDecoder{}
	for round := range 2 {
		for i, in := range inputs {
			want, wantErr := DecodePickle([]byte(in), PickleLimits{})
			got, err := d.Decode([]byte(in))
			if got.Raw != want.Raw || (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
				t.Errorf("round %d, input %d: reused decoder %s, %v; new one %s, %v", round, i, intake.Brief(got.Raw), err, intake.Brief(want.Raw), wantErr)
			}
		}
	}
	if n := len(d.u.free); n > keepSlabs {
		t.Errorf("decoder keeps %d slabs", n)
	}
}

// TestFromPickleMatchesFromForm checks that one LogRecord makes the
// same record through HTTPHandler's form and SocketHandler's pickle,
// but for the types a form cannot carry.
func TestFromPickleMatchesFromForm(t *testing.T) {
	now := time.Unix(1, 0)
	fields, err := ParseForm(typicalForm, 100)
	if err != nil {
		t.Fatal(err)
	}
	fromForm, err := FromForm(fields, now)
	if err != nil {
		t.Fatal(err)
	}
	v, err := DecodePickle([]byte(typicalFrame[4:]), PickleLimits{})
	if err != nil {
		t.Fatal(err)
	}
	fromPickle, err := FromPickle(v, now)
	if err != nil {
		t.Fatal(err)
	}
	if fromPickle.Message != fromForm.Message || fromPickle.Logger != fromForm.Logger ||
		fromPickle.LevelNo != fromForm.LevelNo || fromPickle.LevelName != fromForm.LevelName ||
		!fromPickle.Time.Equal(fromForm.Time) {
		t.Errorf("pickle %+v\nform %+v", fromPickle, fromForm)
	}
	if len(fromPickle.Attrs) != len(fromForm.Attrs) {
		t.Fatalf("pickle attrs %v\nform attrs %v", attrKeys(fromPickle), attrKeys(fromForm))
	}
	for i, a := range fromPickle.Attrs {
		b := fromForm.Attrs[i]
		if a.Key != b.Key || a.Value != b.Value {
			t.Errorf("attr %d: pickle %s=%+v, form %s=%+v", i, a.Key, a.Value, b.Key, b.Value)
		}
	}
}

func TestFromPickle(t *testing.T) {
	now := time.Unix(1700000000, 0)
	kv := func(pairs ...Value) Value {
		ps := make([]Pair, 0, len(pairs)/2)
		for i := 0; i+1 < len(pairs); i += 2 {
			ps = append(ps, Pair{pairs[i], pairs[i+1]})
		}
		return Dict(ps...)
	}
	for _, tc := range []struct {
		name    string
		in      Value
		message string
		level   int
		attrs   map[string]string // expected subset; "" means absent
		wantErr string
	}{
		{name: "not a dict", in: List(), wantErr: "pickled object is a list"},
		{name: "no record keys", in: kv(Str("foo"), Int(1)), wantErr: "no msg, message or name"},
		{
			name:    "args still there are formatted",
			in:      kv(Str("msg"), Str("%s and %d"), Str("args"), Tuple(Str("a"), Int(2))),
			message: "a and 2", level: 20, attrs: map[string]string{"args": ""},
		},
		{
			name:    "falsy args leave msg alone",
			in:      kv(Str("msg"), Str("100%"), Str("args"), Tuple()),
			message: "100%", level: 20, attrs: map[string]string{"args": "", "format_error": ""},
		},
		{
			name:    "args that do not fit",
			in:      kv(Str("msg"), Str("%s %s"), Str("args"), Tuple(Int(1))),
			message: "%s %s", level: 20,
			attrs: map[string]string{"args": "(1,)", "format_error": "not enough arguments for format string"},
		},
		{
			name:    "message wins over msg",
			in:      kv(Str("msg"), Str("m"), Str("message"), Str("formatted")),
			message: "formatted", level: 20,
		},
		{
			name:    "levelno as int, levelname missing",
			in:      kv(Str("msg"), Str("m"), Str("levelno"), Int(25)),
			message: "m", level: 25,
		},
		{
			name:    "exc_info kept without exc_text",
			in:      kv(Str("msg"), Str("m"), Str("exc_info"), Str("ValueError: x"), Str("exc_text"), None()),
			message: "m", level: 20, attrs: map[string]string{"exc_info": "ValueError: x", "exc_text": ""},
		},
		{
			name:    "non-str keys and msg",
			in:      kv(Int(1), Str("one"), Str("msg"), Int(5), Str("name"), Str("x")),
			message: "5", level: 20, attrs: map[string]string{"1": "one"},
		},
		{
			name:    "created as int and nonsense",
			in:      kv(Str("msg"), Str("m"), Str("created"), Str("yesterday")),
			message: "m", level: 20, attrs: map[string]string{"created": ""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := FromPickle(tc.in, now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Message != tc.message || rec.LevelNo != tc.level {
				t.Errorf("message %q level %d, want %q %d", rec.Message, rec.LevelNo, tc.message, tc.level)
			}
			got := attrMap(rec)
			for k, want := range tc.attrs {
				v, ok := got[k]
				switch {
				case want == "" && ok:
					t.Errorf("attr %s = %q, want it absent", k, v)
				case want != "" && v != want:
					t.Errorf("attr %s = %q, want %q", k, v, want)
				}
			}
		})
	}
}

func TestPickleJSON(t *testing.T) {
	for _, tc := range []struct {
		in   Value
		want string
	}{
		{List(), `[]`},
		{Tuple(Int(1), Str("a\"\\\n\x01é"), None(), Bool(true)), `[1,"a\"\\\n\u0001é",null,true]`},
		{Dict(Pair{Str("k"), Float(0.1)}, Pair{Int(1), Float(math.Inf(1))}, Pair{Bytes([]byte("b")), Bytes([]byte{0})}),
			`{"k":0.1,"1":"inf","b'b'":"b'\\x00'"}`},
		{List(Value{Kind: KindEllipsis, Raw: "[...]"}, Float(1e16), Float(math.Copysign(0, -1))), `["[...]",1e+16,-0.0]`},
	} {
		got, err := pickleJSON(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("pickleJSON(%s) = %s, %v; want %s", tc.in.Raw, got, err, tc.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("pickleJSON(%s) = %s: invalid JSON", tc.in.Raw, got)
		}
	}
	deep := List()
	for range 200 {
		deep = List(deep)
	}
	if _, err := pickleJSON(deep); !errors.Is(err, errJSONDepth) {
		t.Errorf("deep list: err = %v", err)
	}
	if a := pickleAttr(deep); a.Kind != intake.KindString || a.Str != deep.Raw {
		t.Errorf("deep list attr = %+v, want its repr", a)
	}
}

// TestSocketHandlerOverNetwork runs the real SocketHandler and
// DatagramHandler against loopback sockets.
func TestSocketHandlerOverNetwork(t *testing.T) {
	pythonTB(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	const script = `
import logging, logging.handlers, sys
lg = logging.getLogger('net.test')
lg.setLevel(logging.DEBUG)
lg.propagate = False
sh = logging.handlers.SocketHandler('127.0.0.1', int(sys.argv[1]))
dh = logging.handlers.DatagramHandler('127.0.0.1', int(sys.argv[2]))
lg.addHandler(sh)
lg.addHandler(dh)
for i in range(5):
    lg.info('message %d %s', i, 'ü', extra={'i': i, 'blob': b'\x00\xff'})
try:
    raise ValueError('bad')
except ValueError:
    lg.exception('oops')
sh.close()
dh.close()
`
	type result struct {
		recs []intake.Record
		err  error
	}
	tcp := make(chan result, 1)
	go func() {
		var res result
		defer func() { tcp <- res }()
		if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
			res.err = err
			return
		}
		conn, err := ln.Accept()
		if err != nil {
			res.err = err
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		sc := NewSocketScanner(conn, 0)
		for sc.Scan() {
			v, err := DecodePickle(sc.Bytes(), PickleLimits{})
			if err == nil {
				var rec intake.Record
				rec, err = FromPickle(v, time.Now())
				res.recs = append(res.recs, rec)
			}
			if err != nil {
				res.err = err
				return
			}
		}
		res.err = sc.Err()
	}()
	udp := make(chan result, 1)
	go func() {
		var res result
		defer func() { udp <- res }()
		buf := make([]byte, 65536)
		_ = pc.SetReadDeadline(time.Now().Add(30 * time.Second))
		for len(res.recs) < 6 {
			n, _, err := pc.ReadFrom(buf)
			if err == nil {
				var p []byte
				if p, err = DatagramPayload(buf[:n], 0); err == nil {
					var v Value
					if v, err = DecodePickle(p, PickleLimits{}); err == nil {
						var rec intake.Record
						rec, err = FromPickle(v, time.Now())
						res.recs = append(res.recs, rec)
					}
				}
			}
			if err != nil {
				res.err = err
				return
			}
		}
	}()
	runScript(t, script, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port))
	for name, ch := range map[string]chan result{"tcp": tcp, "udp": udp} {
		res := <-ch
		if res.err != nil {
			t.Errorf("%s: %v", name, res.err)
		}
		if len(res.recs) != 6 {
			t.Errorf("%s: %d records, want 6", name, len(res.recs))
			continue
		}
		for i, rec := range res.recs[:5] {
			m := attrMap(rec)
			if want := "message " + strconv.Itoa(i) + " ü"; rec.Message != want || rec.Logger != "net.test" ||
				m["i"] != strconv.Itoa(i) || m["blob"] != `b'\x00\xff'` {
				t.Errorf("%s: record %d = %q %q %v", name, i, rec.Logger, rec.Message, m)
			}
		}
		last := res.recs[5]
		if tb := attrMap(last)["exc_text"]; last.Message != "oops" || last.LevelNo != 40 ||
			!strings.HasPrefix(tb, "Traceback (most recent call last):") || !strings.HasSuffix(tb, "ValueError: bad") {
			t.Errorf("%s: exception record %q %d, exc_text %q", name, last.Message, last.LevelNo, tb)
		}
	}
}

func BenchmarkDecodePickle(b *testing.B) {
	data := []byte(typicalFrame[4:])
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		v, err := DecodePickle(data, PickleLimits{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := FromPickle(v, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPickleDecoder is BenchmarkDecodePickle with the decoder a
// receiver keeps per connection.
func BenchmarkPickleDecoder(b *testing.B) {
	data := []byte(typicalFrame[4:])
	now := time.Now()
	var d PickleDecoder
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		v, err := d.Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := FromPickle(v, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePickleOnly(b *testing.B) {
	data := []byte(typicalFrame[4:])
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodePickle(data, PickleLimits{}); err != nil {
			b.Fatal(err)
		}
	}
}

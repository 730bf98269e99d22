package pylog

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// hostileScript prints pickles that run `touch MARKER` when Python
// loads them, each with its own MARKER in the directory argv[1]: made by
// hand with each opcode that can call something, and by pickle.dumps of
// objects whose __reduce__ asks for os.system, exec or subprocess, at
// every protocol. runs says whether pickle.loads would run it.
const hostileScript = `
import json, os, pickle, subprocess, sys

def by_hand(cmd):
    q = repr(cmd).encode()
    c = cmd.encode()
    return [
        ['GLOBAL os.system + REDUCE, protocol 0', b"cos\nsystem\n(S" + q + b"\ntR."],
        ['GLOBAL posix.system + REDUCE, protocol 2',
         b"\x80\x02cposix\nsystem\nq\x00X" + len(c).to_bytes(4, 'little') + c + b"\x85q\x01Rq\x02."],
        ['STACK_GLOBAL, protocol 4', b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c" + bytes([len(c)]) + c + b"\x85R."],
        ['INST', b"(S" + q + b"\nios\nsystem\n."],
        ['OBJ', b"(cos\nsystem\nS" + q + b"\no."],
        ['_codecs.encode given state by BUILD, then os.system', b"c_codecs\nencode\nNb0cos\nsystem\n(S" + q + b"\ntR."],
        ['bytes() with arguments, then os.system', b"c__builtin__\nbytes\n(I3\ntR0cos\nsystem\n(S" + q + b"\ntR."],
    ]

class System:
    def __init__(self, cmd): self.cmd = cmd
    def __reduce__(self): return (os.system, (self.cmd,))

class Exec:
    def __init__(self, cmd): self.cmd = cmd
    def __reduce__(self): return (exec, ("import os; os.system(%r)" % self.cmd,))

class Popen:
    def __init__(self, cmd): self.cmd = cmd
    def __reduce__(self): return (subprocess.call, (self.cmd.split(),))

class Plain:
    def __init__(self): self.a = 1

makers = [lambda cmd, i=i: by_hand(cmd)[i] for i in range(len(by_hand('')))]
for cls in (System, Exec, Popen):
    for proto in range(6):
        makers.append(lambda cmd, cls=cls, proto=proto:
                      ['%s.__reduce__, protocol %d' % (cls.__name__, proto), pickle.dumps(cls(cmd), proto)])
# An object inside an otherwise valid record dict.
makers.append(lambda cmd: ['record with an object in extra', pickle.dumps({'msg': 'hi', 'x': System(cmd)}, 1)])
out = []
for i, make in enumerate(makers):
    marker = os.path.join(sys.argv[1], 'pwned-%d' % i)
    name, p = make('touch ' + marker)
    out.append([name, p.hex(), marker, True])
# NEWOBJ needs the class where the pickle is loaded, so these do not run
# in the loading script; they are refused all the same.
for proto in (2, 4):
    out.append(['NEWOBJ, protocol %d' % proto, pickle.dumps({'x': Plain()}, proto).hex(), '', False])
print(json.dumps(out))
`

// TestDecodePickleRefusesCode checks that pickles that would run a
// command are rejected, and that nothing runs; then that Python's own
// pickle.loads does run them, so the test proves something.
func TestDecodePickleRefusesCode(t *testing.T) {
	dir := t.TempDir()
	var raw [][4]any
	if err := json.Unmarshal(runScript(t, hostileScript, dir), &raw); err != nil {
		t.Fatal(err)
	}
	type hostile struct {
		name, hex, marker string
		runs              bool
	}
	cases := make([]hostile, len(raw))
	hexes := make([]string, len(raw))
	for i, r := range raw {
		cases[i] = hostile{r[0].(string), r[1].(string), r[2].(string), r[3].(bool)}
		hexes[i] = cases[i].hex
	}
	for _, c := range cases {
		_, err := DecodePickle(mustHex(t, c.hex), PickleLimits{})
		var pe *PickleError
		switch {
		case err == nil:
			t.Errorf("%s: decoded without error", c.name)
		case !errors.As(err, &pe):
			t.Errorf("%s: error %v is not a *PickleError", c.name, err)
		case !pe.Refused:
			t.Errorf("%s: refused for the wrong reason: %v", c.name, err)
		case !strings.Contains(err.Error(), "at offset "):
			t.Errorf("%s: error %q does not say where", c.name, err)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("after DecodePickle, %s holds %d files (%v)", dir, len(entries), err)
	}

	// Now let Python load them.
	const load = `
import json, pickle, sys
for h in json.load(sys.stdin):
    try:
        pickle.loads(bytes.fromhex(h))
    except Exception:
        pass
print('[]')
`
	var ignored []any
	runPython(t, load, hexes, &ignored)
	for _, c := range cases {
		if !c.runs {
			continue
		}
		if _, err := os.Stat(c.marker); err != nil {
			t.Errorf("%s: did not run its command in Python either: %v", c.name, err)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodePickleRefusals covers the opcodes that build objects, by
// hand, with the opcode and offset each error must name.
func TestDecodePickleRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		op       string
		offset   int
		refused  bool
	}{
		{"GLOBAL", "cos\nsystem\n(S'true'\ntR.", "GLOBAL 'c'", 0, true},
		{"GLOBAL after a valid prefix", "}q\x00(X\x01\x00\x00\x00acbuiltins\neval\nu.", "GLOBAL 'c'", 10, true},
		{"REDUCE of a list", "](tR.", "REDUCE 'R'", 3, true},
		{"_codecs.encode with utf-8", "c_codecs\nencode\n(X\x01\x00\x00\x00xX\x05\x00\x00\x00utf-8tR.", "REDUCE 'R'", 34, true},
		{"_codecs.encode with three args", "c_codecs\nencode\n(X\x01\x00\x00\x00xX\x06\x00\x00\x00latin1NtR.", "REDUCE 'R'", 36, true},
		{"_codecs.encode of bytes", "c_codecs\nencode\n(C\x01xX\x06\x00\x00\x00latin1tR.", "REDUCE 'R'", 32, true},
		{"bytes of a str", "c__builtin__\nbytes\n(X\x01\x00\x00\x00xtR.", "REDUCE 'R'", 27, true},
		{"builtins.bytes", "\x80\x03cbuiltins\nbytes\n)R.", "GLOBAL 'c'", 2, true},
		{"BUILD", "}}b.", "BUILD 'b'", 2, true},
		{"INST", "(ios\nsystem\n.", "INST 'i'", 1, true},
		{"OBJ", "(]o.", "OBJ 'o'", 2, true},
		{"NEWOBJ", "\x80\x02])\x81.", "NEWOBJ 0x81", 4, true},
		{"NEWOBJ_EX", "\x80\x04])}\x92.", "NEWOBJ_EX 0x92", 5, true},
		{"STACK_GLOBAL", "\x80\x04\x8c\x02os\x8c\x06system\x93.", "STACK_GLOBAL 0x93", 14, true},
		{"PERSID", "Pid\n.", "PERSID 'P'", 0, true},
		{"space", "N Q.", "unknown 0x20", 1, false},
		{"BINPERSID", "NQ.", "BINPERSID 'Q'", 1, true},
		{"EXT1", "\x80\x02\x82\x01.", "EXT1 0x82", 2, true},
		{"EXT1 without PROTO", "\x82\x01.", "EXT1 0x82", 0, true},
		{"EXT2", "\x83\x01\x00.", "EXT2 0x83", 0, true},
		{"EXT4", "\x84\x01\x00\x00\x00.", "EXT4 0x84", 0, true},
		{"EMPTY_SET", "\x80\x04\x8f.", "EMPTY_SET 0x8f", 2, false},
		{"FROZENSET", "(\x91.", "FROZENSET 0x91", 1, false},
		{"BYTEARRAY8", "\x96\x00\x00\x00\x00\x00\x00\x00\x00.", "BYTEARRAY8 0x96", 0, false},
		{"NEXT_BUFFER", "\x97.", "NEXT_BUFFER 0x97", 0, false},
		{"unknown", "\xff.", "unknown 0xff", 0, false},
	} {
		_, err := DecodePickle([]byte(tc.in), PickleLimits{})
		var pe *PickleError
		if !errors.As(err, &pe) {
			t.Errorf("%s: err = %v, want a *PickleError", tc.name, err)
			continue
		}
		if got := opName(pe.Op); got != tc.op || pe.Offset != tc.offset || pe.Refused != tc.refused {
			t.Errorf("%s: %v (op %s, offset %d, refused %v); want op %s offset %d refused %v",
				tc.name, err, got, pe.Offset, pe.Refused, tc.op, tc.offset, tc.refused)
		}
	}
}

// TestDecodePickleGlobalsOnlyForBytes checks that the callables kept for
// bytes cannot be had as values.
func TestDecodePickleGlobalsOnlyForBytes(t *testing.T) {
	for _, in := range []string{
		"c_codecs\nencode\n.",
		"(c_codecs\nencode\nl.",
		"]c__builtin__\nbytes\na.",
		"}c_codecs\nencode\nq\x00X\x01\x00\x00\x00kh\x00s.",
		"}c_codecs\nencode\nNs.",
	} {
		if v, err := DecodePickle([]byte(in), PickleLimits{}); err == nil {
			t.Errorf("DecodePickle(%q) = %s, want an error", in, v.Raw)
		}
	}
}

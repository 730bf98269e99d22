package pylog

import (
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind tells what Python object a Value stands for, and so which of its
// fields are meaningful.
type Kind uint8

// The kinds of values. Raw is meaningful for all of them.
const (
	KindNone     Kind = iota
	KindBool          // Int is 0 or 1
	KindInt           // Int, or Big when it does not fit in an int64
	KindFloat         // Float
	KindComplex       // only Raw: "(1+2j)", "-1j"
	KindStr           // Str is the decoded text
	KindBytes         // Str holds the bytes (not necessarily UTF-8)
	KindTuple         // Items
	KindList          // Items
	KindDict          // Pairs, in order
	KindSet           // Items
	KindEllipsis      // "...", which repr() writes for a container inside itself
	KindCall          // Str is the callee ("ValueError"), Items the arguments
	KindOpaque        // only Raw: "<object at 0x...>", a bare name, a call we could not read
)

var kindNames = [...]string{
	KindNone: "None", KindBool: "bool", KindInt: "int", KindFloat: "float",
	KindComplex: "complex", KindStr: "str", KindBytes: "bytes",
	KindTuple: "tuple", KindList: "list", KindDict: "dict", KindSet: "set",
	KindEllipsis: "ellipsis", KindCall: "object", KindOpaque: "object",
}

// String returns Python's name for the type, as used in its error messages.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is a Python object as far as we can know it from the outside.
//
// Raw is always the object's repr(). For every kind except str, str() of
// the object is the same text; for str, Str holds the decoded text. So
// Raw is kept exactly as it was read, never re-rendered.
type Value struct {
	Kind Kind

	// Raw is the object's repr() text.
	Raw string

	// Str is the text of a str, the content of a bytes, and the callee
	// of a call form (dotted, as written: "datetime.datetime").
	Str string

	// Int is the value of a bool or of an int that fits in 64 bits.
	Int int64

	// Big is the value of an int that does not fit in 64 bits; nil
	// otherwise.
	Big *big.Int

	// Float is the value of a float.
	Float float64

	// Items are the elements of a tuple, list or set, or the positional
	// arguments of a call form.
	Items []Value

	// Pairs are the entries of a dict, in order.
	Pairs []Pair
}

// Pair is one entry of a dict.
type Pair struct {
	Key, Value Value
}

// None returns Python's None.
func None() Value { return Value{Kind: KindNone, Raw: "None"} }

// Bool returns True or False.
func Bool(b bool) Value {
	if b {
		return Value{Kind: KindBool, Raw: "True", Int: 1}
	}
	return Value{Kind: KindBool, Raw: "False"}
}

// Int returns an int.
func Int(i int64) Value {
	return Value{Kind: KindInt, Raw: strconv.FormatInt(i, 10), Int: i}
}

// BigInt returns an int of any size; x is not retained.
func BigInt(x *big.Int) Value {
	if x.IsInt64() {
		return Int(x.Int64())
	}
	return Value{Kind: KindInt, Raw: x.String(), Big: new(big.Int).Set(x)}
}

// Float returns a float, with Python's repr() of it.
func Float(f float64) Value {
	return Value{Kind: KindFloat, Raw: floatRepr(f), Float: f}
}

// Str returns a str, with Python's repr() of it. Invalid UTF-8 becomes
// U+FFFD, as a lone surrogate does when a str is read.
func Str(s string) Value {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return Value{Kind: KindStr, Raw: strRepr(s), Str: s}
}

// Bytes returns a bytes object, with Python's repr() of it.
func Bytes(b []byte) Value {
	return Value{Kind: KindBytes, Raw: bytesRepr(b), Str: string(b)}
}

// Tuple returns a tuple of items.
func Tuple(items ...Value) Value {
	raw := "(" + joinRaw(items) + ")"
	if len(items) == 1 {
		raw = "(" + items[0].Raw + ",)"
	}
	return Value{Kind: KindTuple, Raw: raw, Items: items}
}

// List returns a list of items.
func List(items ...Value) Value {
	return Value{Kind: KindList, Raw: "[" + joinRaw(items) + "]", Items: items}
}

// Set returns a set of items, in the order given.
func Set(items ...Value) Value {
	if len(items) == 0 {
		return Value{Kind: KindSet, Raw: "set()"}
	}
	return Value{Kind: KindSet, Raw: "{" + joinRaw(items) + "}", Items: items}
}

// Dict returns a dict with the given entries, in order.
func Dict(pairs ...Pair) Value {
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range pairs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Key.Raw)
		b.WriteString(": ")
		b.WriteString(p.Value.Raw)
	}
	b.WriteByte('}')
	return Value{Kind: KindDict, Raw: b.String(), Pairs: pairs}
}

// Call returns an object whose repr() is a call of callee with args, the
// way exceptions and most library types show themselves:
// ValueError('bad'), datetime.date(2020, 1, 1).
func Call(callee string, args ...Value) Value {
	return Value{Kind: KindCall, Raw: callee + "(" + joinRaw(args) + ")", Str: callee, Items: args}
}

// Opaque returns an object known only by its repr().
func Opaque(raw string) Value { return Value{Kind: KindOpaque, Raw: raw} }

func joinRaw(items []Value) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0].Raw
	}
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(it.Raw)
	}
	return b.String()
}

// Truthy reports Python's bool(v). Objects we know only by their repr
// count as true, as objects do unless their class says otherwise.
func (v Value) Truthy() bool {
	switch v.Kind {
	case KindNone:
		return false
	case KindBool, KindInt:
		return v.Int != 0 || v.Big != nil
	case KindFloat:
		return v.Float != 0
	case KindStr, KindBytes:
		return v.Str != ""
	case KindTuple, KindList, KindSet:
		return len(v.Items) > 0
	case KindDict:
		return len(v.Pairs) > 0
	}
	return true
}

// PyStr returns Python's str(v), and false when it cannot be known from
// the outside (an object whose class may define its own __str__).
func (v Value) PyStr() (string, bool) {
	return v.pyStr(0)
}

func (v Value) pyStr(depth int) (string, bool) {
	switch v.Kind {
	case KindStr:
		return v.Str, true
	case KindCall:
		return callStr(v, depth)
	case KindOpaque:
		// The only bare names repr() writes are objects whose str() is
		// their name.
		if v.Raw == "Ellipsis" || v.Raw == "NotImplemented" {
			return v.Raw, true
		}
		return "", false
	}
	return v.Raw, true
}

// isPlainException reports whether name is a builtin exception whose
// str() is BaseException's: "" without arguments, str(arg) with one, the
// repr of the argument tuple with more. OSError and its subclasses (errno
// formatting), SyntaxError, the Unicode errors and KeyError are not.
func isPlainException(name string) bool {
	switch name {
	case "BaseException", "Exception", "ArithmeticError", "AssertionError",
		"AttributeError", "BufferError", "EOFError", "FloatingPointError",
		"GeneratorExit", "ImportError", "IndexError", "KeyboardInterrupt",
		"LookupError", "MemoryError", "ModuleNotFoundError", "NameError",
		"NotImplementedError", "OverflowError", "RecursionError",
		"ReferenceError", "RuntimeError", "StopAsyncIteration",
		"StopIteration", "SystemError", "SystemExit", "TypeError",
		"UnboundLocalError", "UnicodeError", "ValueError",
		"ZeroDivisionError", "Warning", "UserWarning", "DeprecationWarning",
		"PendingDeprecationWarning", "RuntimeWarning", "SyntaxWarning",
		"FutureWarning", "ImportWarning", "UnicodeWarning", "BytesWarning",
		"ResourceWarning", "EncodingWarning":
		return true
	}
	return false
}

// reprIsStr reports whether name is a library type written as a call
// form whose class leaves __str__ to object, so that str() is repr().
func reprIsStr(name string) bool {
	switch name {
	case "set", "frozenset", "bytearray", "range", "slice",
		"deque", "OrderedDict", "defaultdict", "Counter":
		return true
	}
	return false
}

// callStr is str() of a call form, for the classes whose str() follows
// from the arguments alone.
func callStr(v Value, depth int) (string, bool) {
	switch {
	case reprIsStr(v.Str):
		return v.Raw, true
	case v.Str == "KeyError" && len(v.Items) == 1:
		// KeyError shows the missing key as repr: KeyError('k') is "'k'".
		return v.Items[0].Raw, true
	case v.Str == "KeyError" || isPlainException(v.Str):
		switch len(v.Items) {
		case 0:
			return "", true
		case 1:
			if depth >= maxDepth {
				return "", false
			}
			return v.Items[0].pyStr(depth + 1)
		}
		return "(" + joinRaw(v.Items) + ")", true
	}
	return "", false
}

// ASCII returns Python's ascii(v): repr() with non-ASCII characters
// escaped as \xhh, \uhhhh or \Uhhhhhhhh.
func (v Value) ASCII() string { return asciiEscape(v.Raw) }

func asciiEscape(s string) string {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		if r < utf8.RuneSelf {
			b.WriteRune(r)
			continue
		}
		writeCodeEscape(&b, r)
	}
	return b.String()
}

// writeCodeEscape writes r as Python escapes a code point it will not
// show: \xhh, \uhhhh or \Uhhhhhhhh, lower-case hex.
func writeCodeEscape(b *strings.Builder, r rune) {
	const hex = "0123456789abcdef"
	var n int
	switch {
	case r <= 0xff:
		b.WriteString(`\x`)
		n = 2
	case r <= 0xffff:
		b.WriteString(`\u`)
		n = 4
	default:
		b.WriteString(`\U`)
		n = 8
	}
	for shift := 4 * (n - 1); shift >= 0; shift -= 4 {
		b.WriteByte(hex[(r>>shift)&0xf])
	}
}

// strRepr is Python's repr() of a str: single quotes unless the text
// holds a single quote and no double quote, and escapes for what
// str.isprintable() rejects. Go's unicode.IsPrint draws the same line
// (letters, marks, numbers, punctuation, symbols and the ASCII space);
// only characters assigned in one Unicode version and not the other can
// come out differently.
func strRepr(s string) string {
	quote := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		quote = '"'
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < ' ' || r == 0x7f:
			writeCodeEscape(&b, r)
		case r < utf8.RuneSelf || unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			writeCodeEscape(&b, r)
		}
	}
	b.WriteByte(quote)
	return b.String()
}

// bytesRepr is Python's repr() of a bytes object.
func bytesRepr(p []byte) string {
	quote := byte('\'')
	if strings.IndexByte(string(p), '\'') >= 0 && strings.IndexByte(string(p), '"') < 0 {
		quote = '"'
	}
	var b strings.Builder
	b.Grow(len(p) + 3)
	b.WriteString("b")
	b.WriteByte(quote)
	for _, c := range p {
		switch {
		case c == quote || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < ' ' || c >= 0x7f:
			writeCodeEscape(&b, rune(c))
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(quote)
	return b.String()
}

package pylog

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// maxWidth bounds field widths and precisions. Python has no limit short
// of memory; a log receiver needs one, and no real message pads further.
const maxWidth = 1 << 16

// maxGrowth bounds how much longer than msg and args together a rendered
// message may be when the caller gives no limit: "%(a)s" repeated would
// otherwise copy a large value once per occurrence.
const maxGrowth = 1 << 20

// Format renders msg with args the way LogRecord.getMessage() does:
// `msg % args` if args is true in Python's sense, msg untouched otherwise
// (an empty tuple or dict, or None, means "no arguments", and no %
// processing at all takes place).
//
// It implements the whole printf-style mini-language of Python 3's str %
// operator, including its quirks: a dict supplies %(key)s values, any
// other single value acts as a 1-tuple, a dict or list with no
// conversions that consume it is silently ignored.
//
// An error means Python would have raised (too few or too many
// arguments, wrong types, a missing key), or that the result depends on
// what cannot be known from a repr() (str() of an object whose class may
// define __str__, a number held by an opaque object). The caller should
// then keep msg and args as they came.
//
// The message is cut at 1 MiB more than msg and args together; see
// FormatLimit.
func Format(msg string, args Value) (string, error) {
	s, _, _, err := format(msg, args, nil, 0)
	return s, err
}

// FormatLimit is Format with the rendered message cut at limit bytes (on
// a character boundary), reporting whether it was cut. The formatter
// stops at the limit: it never holds more, whatever widths and repeated
// %(key)s ask for, and what the rest of msg would have raised is not
// known. limit <= 0 means 1 MiB more than msg and args together.
func FormatLimit(msg string, args Value, limit int) (s string, cut bool, err error) {
	s, _, cut, err = format(msg, args, nil, limit)
	return s, cut, err
}

// format is FormatLimit with the message written into buf's backing
// array when it has room; it returns the array it wrote into, for the
// next message. The string points into that array.
func format(msg string, args Value, buf []byte, limit int) (string, []byte, bool, error) {
	if !args.Truthy() {
		if limit > 0 && len(msg) > limit {
			return intake.CutUTF8(msg, limit), buf, true, nil
		}
		return msg, buf, false, nil
	}
	if limit <= 0 {
		limit = len(msg) + len(args.Raw) + maxGrowth
	}
	f := formatter{
		out:     textBuf(buf[:0]),
		args:    args,
		argLen:  -1,
		argIdx:  -2,
		dict:    args,
		mapping: mappingOf(args),
		limit:   limit,
	}
	if args.Kind == KindTuple {
		f.argLen, f.argIdx = len(args.Items), 0
	}
	f.out.grow(min(len(msg)+len(args.Raw), limit))
	if err := f.run(msg); err != nil {
		return "", f.out, false, err
	}
	return f.out.string(), f.out, f.cut, nil
}

// textBuf is the message being formatted.
type textBuf []byte

func (b *textBuf) add(s string)   { *b = append(*b, s...) }
func (b *textBuf) addByte(c byte) { *b = append(*b, c) }

// add writes s into the message, up to the limit; once the message has
// been cut, nothing more.
func (f *formatter) add(s string) {
	if f.cut {
		return
	}
	if room := f.limit - len(f.out); len(s) > room {
		s, f.cut = intake.CutUTF8(s, room), true
	}
	f.out.add(s)
}

// pad writes n bytes c into the message, up to the limit.
func (f *formatter) pad(c byte, n int) {
	if f.cut {
		return
	}
	if room := f.limit - len(f.out); n > room {
		n, f.cut = room, true
	}
	pad(&f.out, c, n)
}
func (b *textBuf) string() string { return unsafe.String(unsafe.SliceData(*b), len(*b)) }

func (b *textBuf) grow(n int) {
	if cap(*b)-len(*b) < n {
		*b = append(make([]byte, 0, len(*b)+n), *b...)
	}
}

// tristate answers what we know of an opaque object: yes, no, or "it
// depends on its class".
type tristate uint8

const (
	no tristate = iota
	yes
	unknown
)

// mappingOf tells whether str % treats v as a mapping: an object with
// __getitem__ that is neither a tuple nor a str (CPython tests
// PyMapping_Check), so lists and bytes count too.
func mappingOf(v Value) tristate {
	switch v.Kind {
	case KindDict, KindList, KindBytes:
		return yes
	case KindCall, KindOpaque:
		switch {
		case v.Kind != KindCall:
		case isPlainException(v.Str), v.Str == "KeyError",
			v.Str == "set", v.Str == "frozenset", v.Str == "slice", v.Str == "deque":
			return no
		case v.Str == "range", v.Str == "bytearray",
			v.Str == "OrderedDict", v.Str == "defaultdict", v.Str == "Counter":
			return yes
		}
		return unknown
	}
	return no
}

// formatter holds the state of CPython's PyUnicode_Format: the current
// arguments, how many of them there are (-1 for a single non-tuple
// value) and the index of the next one.
type formatter struct {
	out     textBuf
	args    Value
	argLen  int
	argIdx  int
	dict    Value    // the original args, for %(key) lookups
	mapping tristate // whether dict is a mapping
	limit   int      // the most bytes out may hold
	cut     bool     // out reached limit: the rest is not rendered
}

// spec is one parsed conversion specifier.
type spec struct {
	flags byte
	width int // -1 when not given
	prec  int // -1 when not given
	conv  byte
	pos   int // where the specifier started, for error messages
}

const (
	flagLeft  = 1 << iota // '-'
	flagSign              // '+'
	flagBlank             // ' '
	flagAlt               // '#'
	flagZero              // '0'
)

func (f *formatter) run(msg string) error {
	for i := 0; i < len(msg); {
		j := strings.IndexByte(msg[i:], '%')
		if j < 0 {
			f.add(msg[i:])
			break
		}
		if f.add(msg[i : i+j]); f.cut {
			return nil
		}
		i += j + 1
		if i < len(msg) && msg[i] == '%' {
			f.add("%")
			i++
		} else {
			next, err := f.conversion(msg, i)
			if err != nil {
				return err
			}
			i = next
		}
		if f.cut {
			// Stop here: rendering the rest would only cost time.
			return nil
		}
	}
	if f.cut {
		return nil
	}
	if f.argIdx < f.argLen {
		switch f.mapping {
		case no:
			return errors.New("not all arguments converted during string formatting")
		case unknown:
			return fmt.Errorf("not all arguments converted, unless %s is a mapping", intake.Brief(f.dict.Raw))
		}
	}
	return nil
}

// conversion handles the specifier after the '%' at msg[i-1] and returns
// where the text resumes.
func (f *formatter) conversion(msg string, i int) (int, error) {
	sp := spec{width: -1, prec: -1, pos: i - 1}
	var err error
	if i, err = f.parseSpec(msg, i, &sp); err != nil {
		return 0, err
	}
	v, err := f.nextArg()
	if err != nil {
		return 0, err
	}
	if err := f.format(v, &sp); err != nil {
		return 0, err
	}
	if f.argIdx < f.argLen && f.mapping != no {
		return 0, errors.New("not all arguments converted during string formatting")
	}
	return i, nil
}

// parseSpec reads "(key)", flags, width, precision, length modifier and
// conversion character, in CPython's order: a '*' takes its argument
// when it is read.
func (f *formatter) parseSpec(msg string, i int, sp *spec) (int, error) {
	if i < len(msg) && msg[i] == '(' {
		end, err := keyEnd(msg, i)
		if err != nil {
			return 0, err
		}
		if err := f.lookup(msg[i+1 : end-1]); err != nil {
			return 0, err
		}
		i = end
	}
	i = parseFlags(msg, i, &sp.flags)
	var err error
	if i < len(msg) && msg[i] == '*' {
		if sp.width, err = f.starArg(); err != nil {
			return 0, err
		}
		if sp.width < 0 {
			sp.flags |= flagLeft
			sp.width = -sp.width
		}
		i++
	} else if i, sp.width, err = digitsAt(msg, i, "width"); err != nil {
		return 0, err
	}
	if i < len(msg) && msg[i] == '.' {
		i++
		sp.prec = 0
		if i < len(msg) && msg[i] == '*' {
			if sp.prec, err = f.starArg(); err != nil {
				return 0, err
			}
			i++
		} else if i, sp.prec, err = digitsAt(msg, i, "precision"); err != nil {
			return 0, err
		}
		sp.prec = max(sp.prec, 0) // none or negative: zero
	}
	if i < len(msg) && (msg[i] == 'h' || msg[i] == 'l' || msg[i] == 'L') {
		i++
	}
	if i >= len(msg) {
		return 0, errors.New("incomplete format")
	}
	sp.conv = msg[i]
	return i + 1, nil
}

// parseFlags reads the flag characters at msg[i].
func parseFlags(msg string, i int, flags *byte) int {
	for ; i < len(msg); i++ {
		switch msg[i] {
		case '-':
			*flags |= flagLeft
		case '+':
			*flags |= flagSign
		case ' ':
			*flags |= flagBlank
		case '#':
			*flags |= flagAlt
		case '0':
			*flags |= flagZero
		default:
			return i
		}
	}
	return i
}

// keyEnd returns the end of the "(key)" at msg[i]; parentheses inside
// the key nest, as in CPython.
func keyEnd(msg string, i int) (int, error) {
	depth := 0
	for ; i < len(msg); i++ {
		switch msg[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1, nil
			}
		}
	}
	return 0, errors.New("incomplete format key")
}

// digitsAt reads the decimal number at msg[i], -1 when there is none.
func digitsAt(msg string, i int, what string) (int, int, error) {
	if i >= len(msg) || !isDigit(msg[i]) {
		return i, -1, nil
	}
	n := 0
	for ; i < len(msg) && isDigit(msg[i]); i++ {
		n = n*10 + int(msg[i]-'0')
		if n > maxWidth {
			return 0, 0, fmt.Errorf("%s too big", what)
		}
	}
	return i, n, nil
}

// starArg takes the argument of a '*' width or precision.
func (f *formatter) starArg() (int, error) {
	v, err := f.nextArg()
	if err != nil {
		return 0, err
	}
	if v.Kind != KindInt && v.Kind != KindBool {
		return 0, errors.New("* wants int")
	}
	if v.Big != nil || v.Int < -maxWidth || v.Int > maxWidth {
		return 0, fmt.Errorf("* argument %s too big", intake.Brief(v.Raw))
	}
	return int(v.Int), nil
}

// lookup makes the value of a %(key) the current argument.
func (f *formatter) lookup(key string) error {
	switch f.mapping {
	case no:
		return errors.New("format requires a mapping")
	case unknown:
		return fmt.Errorf("cannot look up %q in %s", key, intake.Brief(f.dict.Raw))
	}
	switch f.dict.Kind {
	case KindDict:
	case KindList, KindBytes:
		return fmt.Errorf("%s indices must be integers, not str", f.dict.Kind)
	default:
		return fmt.Errorf("cannot look up %q in %s", key, intake.Brief(f.dict.Raw))
	}
	found, opaqueKeys := false, false
	for _, p := range f.dict.Pairs {
		switch {
		case p.Key.Kind == KindStr && p.Key.Str == key:
			f.args, found = p.Value, true // the last one wins, as in a dict display
		case p.Key.Kind == KindCall || p.Key.Kind == KindOpaque:
			opaqueKeys = true
		}
	}
	switch {
	case found:
	case opaqueKeys:
		// A str enum member, say, would equal the key.
		return fmt.Errorf("cannot look up %q among keys we cannot compare", key)
	default:
		return fmt.Errorf("KeyError: %s", strRepr(key))
	}
	f.argLen, f.argIdx = -1, -2
	return nil
}

func (f *formatter) nextArg() (Value, error) {
	if f.argIdx >= f.argLen {
		return Value{}, errors.New("not enough arguments for format string")
	}
	i := f.argIdx
	f.argIdx++
	if f.argLen < 0 {
		return f.args, nil
	}
	return f.args.Items[i], nil
}

// format converts v as sp says and writes the result.
func (f *formatter) format(v Value, sp *spec) error {
	var s string
	numeric := false
	switch sp.conv {
	case 's':
		var ok bool
		if s, ok = v.PyStr(); !ok {
			return fmt.Errorf("cannot tell what str() makes of %s", intake.Brief(v.Raw))
		}
	case 'r':
		s = v.Raw
	case 'a':
		s = v.ASCII()
	case 'd', 'i', 'u', 'o', 'x', 'X':
		n, err := toInt(v, sp.conv)
		if err != nil {
			return err
		}
		s, numeric = formatInt(n, sp), true
	case 'e', 'E', 'f', 'F', 'g', 'G':
		x, err := toFloat(v, sp.conv)
		if err != nil {
			return err
		}
		prec := sp.prec
		if prec < 0 {
			prec = 6
		}
		s, numeric = formatFloat(x, sp.conv, prec, sp.flags&flagAlt != 0), true
	case 'c':
		r, err := toChar(v)
		if err != nil {
			return err
		}
		s = string(r)
	default:
		c := '?'
		if sp.conv >= 32 && sp.conv <= 126 {
			c = rune(sp.conv)
		}
		return fmt.Errorf("unsupported format character '%c' (0x%x) at index %d", c, sp.conv, sp.pos)
	}
	f.write(s, sp, numeric)
	return nil
}

// write pads s to the width, places the sign and the 0x or 0o prefix,
// and truncates s, r and a conversions to the precision, as CPython's
// unicode_format_arg_output does. Widths count code points.
func (f *formatter) write(s string, sp *spec, numeric bool) {
	n := utf8.RuneCountInString(s)
	if (sp.width < 0 || sp.width <= n) && (sp.prec < 0 || sp.prec >= n) && sp.flags&(flagSign|flagBlank) == 0 {
		f.add(s)
		return
	}
	if (sp.conv == 's' || sp.conv == 'r' || sp.conv == 'a') && sp.prec >= 0 && n > sp.prec {
		s = truncateRunes(s, sp.prec)
		n = sp.prec
	}
	fill := byte(' ')
	if numeric && sp.flags&flagZero != 0 {
		fill = '0'
	}
	var sign string
	if numeric {
		switch {
		case s != "" && (s[0] == '-' || s[0] == '+'):
			sign, s = s[:1], s[1:]
			n--
		case sp.flags&flagSign != 0:
			sign = "+"
		case sp.flags&flagBlank != 0:
			sign = " "
		}
	}
	width := max(sp.width, n)
	if sign != "" {
		if fill != ' ' {
			f.add(sign)
		}
		if width > n {
			width--
		}
	}
	var prefix string
	if sp.flags&flagAlt != 0 && (sp.conv == 'x' || sp.conv == 'X' || sp.conv == 'o') {
		prefix, s = s[:2], s[2:]
		if fill != ' ' {
			f.add(prefix)
		}
		width = max(width-2, 0)
		n -= 2
	}
	if width > n && sp.flags&flagLeft == 0 {
		f.pad(fill, width-n)
		width = n
	}
	if fill == ' ' {
		f.add(sign)
		f.add(prefix)
	}
	f.add(s)
	if width > n {
		f.pad(' ', width-n)
	}
}

func pad(b *textBuf, c byte, n int) {
	for ; n > 0; n-- {
		b.addByte(c)
	}
}

func truncateRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// toInt converts v for an integer conversion: ints and bools as they
// are, floats truncated toward zero except for %o, %x and %X, which want
// a true integer. The result is an int Value: Int, or Big when large.
func toInt(v Value, conv byte) (Value, error) {
	switch v.Kind {
	case KindInt, KindBool:
		return v, nil
	case KindFloat:
		if conv == 'o' || conv == 'x' || conv == 'X' {
			break
		}
		x := math.Trunc(v.Float)
		switch {
		case math.IsInf(x, 0):
			return Value{}, errors.New("cannot convert float infinity to integer")
		case math.IsNaN(x):
			return Value{}, errors.New("cannot convert float NaN to integer")
		case x >= -(1<<63) && x < 1<<63:
			return Value{Kind: KindInt, Int: int64(x)}, nil
		}
		n, _ := new(big.Float).SetFloat64(x).Int(nil)
		return Value{Kind: KindInt, Big: n}, nil
	case KindCall, KindOpaque:
		return Value{}, fmt.Errorf("cannot tell what %%%c makes of %s", conv, intake.Brief(v.Raw))
	}
	if conv == 'o' || conv == 'x' || conv == 'X' {
		return Value{}, fmt.Errorf("%%%c format: an integer is required, not %s", conv, v.Kind)
	}
	return Value{}, fmt.Errorf("%%%c format: a real number is required, not %s", conv, v.Kind)
}

// formatInt is CPython's _PyUnicode_FormatLong: the digits, zero-padded
// to the precision, after the sign and, with '#', the base prefix.
func formatInt(n Value, sp *spec) string {
	base, prefix := 10, ""
	switch sp.conv {
	case 'o':
		base, prefix = 8, "0o"
	case 'x':
		base, prefix = 16, "0x"
	case 'X':
		base, prefix = 16, "0X"
	}
	var digits string
	neg := false
	if n.Big != nil {
		digits = new(big.Int).Abs(n.Big).Text(base)
		neg = n.Big.Sign() < 0
	} else {
		mag := uint64(n.Int)
		if n.Int < 0 {
			mag, neg = -mag, true // two's complement: right for MinInt64 too
		}
		digits = strconv.FormatUint(mag, base)
	}
	if sp.conv == 'X' {
		digits = strings.ToUpper(digits)
	}
	if !neg && sp.flags&flagAlt == 0 && sp.prec <= len(digits) {
		return digits
	}
	var b textBuf
	b.grow(len(digits) + max(sp.prec-len(digits), 0) + 3)
	if neg {
		b.addByte('-')
	}
	if sp.flags&flagAlt != 0 {
		b.add(prefix)
	}
	pad(&b, '0', sp.prec-len(digits))
	b.add(digits)
	return b.string()
}

// toFloat converts v for a float conversion, as float() would: ints
// round to the nearest float and must not overflow.
func toFloat(v Value, conv byte) (float64, error) {
	switch v.Kind {
	case KindFloat:
		return v.Float, nil
	case KindInt, KindBool:
		if v.Big == nil {
			return float64(v.Int), nil
		}
		x, _ := new(big.Float).SetInt(v.Big).Float64()
		if math.IsInf(x, 0) {
			return 0, errors.New("int too large to convert to float")
		}
		return x, nil
	case KindCall, KindOpaque:
		return 0, fmt.Errorf("cannot tell what %%%c makes of %s", conv, intake.Brief(v.Raw))
	}
	return 0, fmt.Errorf("must be real number, not %s", v.Kind)
}

// toChar converts v for %c: a code point, or a str of one character.
func toChar(v Value) (rune, error) {
	switch v.Kind {
	case KindStr:
		r, size := utf8.DecodeRuneInString(v.Str)
		if size == 0 || size != len(v.Str) {
			break
		}
		return r, nil
	case KindInt, KindBool:
		if v.Big != nil || v.Int < 0 || v.Int > utf8.MaxRune {
			return 0, errors.New("%c arg not in range(0x110000)")
		}
		return rune(v.Int), nil
	case KindCall, KindOpaque:
		return 0, fmt.Errorf("cannot tell what %%c makes of %s", intake.Brief(v.Raw))
	}
	return 0, errors.New("%c requires int or char")
}

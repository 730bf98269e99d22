package pylog

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxDepth bounds how deeply containers and calls may nest in a literal,
// so that hostile input cannot exhaust the stack.
const maxDepth = 64

// maxIntDigits is the longest int literal we convert. It is CPython's
// own default limit (sys.get_int_max_str_digits()), so repr() does not
// write longer ones, and it keeps the quadratic decimal conversion cheap.
const maxIntDigits = 4300

var errTooDeep = errors.New("nested deeper than " + strconv.Itoa(maxDepth) + " levels")

// ParseLiteral reads the repr() of a Python object, as logging's
// handlers write a record's args: str and bytes literals with every
// escape repr() uses, ints of any size, floats, complex numbers, True,
// False, None, tuples, lists, dicts and sets. Anything else repr() may
// write is kept as an opaque value with its text: "<object at 0x...>"
// forms, bare names, and call forms like datetime.date(2020, 1, 1), whose
// arguments are read when they are literals themselves (the message of
// an exception is needed to render it).
//
// Nothing is evaluated. Nesting deeper than 64 levels is an error.
func ParseLiteral(s string) (Value, error) {
	return parseLiteral(s, nil)
}

// parseLiteral is ParseLiteral with the items of the outermost tuple,
// list, set or call stored in items' backing array when it has room.
func parseLiteral(s string, items []Value) (Value, error) {
	if !utf8.ValidString(s) {
		return Value{}, errors.New("invalid Python literal: not valid UTF-8")
	}
	p := parser{s: s, quotesInOpaque: true, top: items}
	v, err := p.literal()
	if err != nil && p.quotedOpaque && !errors.Is(err, errTooDeep) {
		// Quotes inside <...> normally enclose strings that may hold '>'
		// (<re.Match object; match='>'>), but a stray one (<Size 5'11>)
		// swallows what follows; try again without giving them a meaning.
		p = parser{s: s, top: items}
		if v2, err2 := p.literal(); err2 == nil {
			return v2, nil
		}
	}
	if err != nil {
		return Value{}, fmt.Errorf("invalid Python literal: %w", err)
	}
	return v, nil
}

// literal reads the whole input as one value.
func (p *parser) literal() (Value, error) {
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.skipSpace()
	if p.pos < len(p.s) {
		return Value{}, p.errorf("unexpected %s after the value", p.what())
	}
	return v, nil
}

// parser reads one literal. Every value it returns has Raw set to the
// exact text it was read from.
type parser struct {
	s   string
	pos int

	// quotesInOpaque makes quotes inside <...> and unreadable call
	// arguments enclose strings whose brackets do not count.
	quotesInOpaque bool

	// quotedOpaque records that such a quote was met, so that reading
	// without quotesInOpaque might turn out differently.
	quotedOpaque bool

	// top, when not nil, is storage for the items of the outermost
	// sequence (a log call's arguments), used once.
	top []Value
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("at offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

// what describes the byte at pos for an error message.
func (p *parser) what() string {
	if p.pos >= len(p.s) {
		return "end of input"
	}
	r, _ := utf8.DecodeRuneInString(p.s[p.pos:])
	return strconv.QuoteRune(r)
}

func (p *parser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *parser) skipSpace() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (Value, error) {
	if depth >= maxDepth {
		return Value{}, fmt.Errorf("at offset %d: %w", p.pos, errTooDeep)
	}
	p.skipSpace()
	start := p.pos
	switch c := p.peek(); {
	case c == '\'' || c == '"':
		s, err := p.quoted(false)
		if err != nil {
			return Value{}, err
		}
		return Value{Kind: KindStr, Raw: p.s[start:p.pos], Str: s}, nil
	case c == 'b' && (p.at(1) == '\'' || p.at(1) == '"'):
		p.pos++
		s, err := p.quoted(true)
		if err != nil {
			return Value{}, err
		}
		return Value{Kind: KindBytes, Raw: p.s[start:p.pos], Str: s}, nil
	case c == '(':
		return p.tuple(depth)
	case c == '[':
		p.pos++
		items, _, err := p.sequence(']', depth)
		if err != nil {
			return Value{}, err
		}
		return Value{Kind: KindList, Raw: p.s[start:p.pos], Items: items}, nil
	case c == '{':
		return p.braces(depth)
	case c == '<':
		if err := p.skipAngle(); err != nil {
			return Value{}, err
		}
		return Value{Kind: KindOpaque, Raw: p.s[start:p.pos]}, nil
	case c == '.' && strings.HasPrefix(p.s[p.pos:], "..."):
		p.pos += 3
		return Value{Kind: KindEllipsis, Raw: "..."}, nil
	case c == '-' || isDigit(c):
		return p.number()
	case c >= utf8.RuneSelf || isNameStart(rune(c)):
		return p.name(depth)
	}
	return Value{}, p.errorf("unexpected %s", p.what())
}

func (p *parser) at(off int) byte {
	if p.pos+off < len(p.s) {
		return p.s[p.pos+off]
	}
	return 0
}

// sequence reads values separated by commas up to close; the opening
// bracket has been read. comma reports a trailing comma, which tells
// "(1,)" from "(1)".
func (p *parser) sequence(close byte, depth int) (items []Value, comma bool, err error) {
	for {
		p.skipSpace()
		if p.peek() == close {
			p.pos++
			return items, comma, nil
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, false, err
		}
		if items == nil {
			if depth == 0 && p.top != nil {
				items, p.top = p.top[:0], nil
			} else {
				// One allocation for the few arguments a log call
				// has, rather than growing from one.
				items = make([]Value, 0, 4)
			}
		}
		items = append(items, v)
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
			comma = true
		case close:
			p.pos++
			return items, false, nil
		default:
			return nil, false, p.errorf("expected ',' or %q, found %s", close, p.what())
		}
	}
}

// tuple reads "(...)": a tuple, or a complex number like "(1+2j)".
func (p *parser) tuple(depth int) (Value, error) {
	start := p.pos
	if end, ok := complexEnd(p.s, start); ok {
		p.pos = end
		return Value{Kind: KindComplex, Raw: p.s[start:end]}, nil
	}
	p.pos++
	items, comma, err := p.sequence(')', depth)
	if err != nil {
		return Value{}, err
	}
	if len(items) == 1 && !comma {
		p.pos = start
		return Value{}, p.errorf("parenthesized value is not a tuple")
	}
	return Value{Kind: KindTuple, Raw: p.s[start:p.pos], Items: items}, nil
}

// braces reads "{...}": a dict, or a set when the first entry has no
// colon. "{}" is an empty dict, as in Python.
func (p *parser) braces(depth int) (Value, error) {
	start := p.pos
	p.pos++
	p.skipSpace()
	if p.peek() == '}' {
		p.pos++
		return Value{Kind: KindDict, Raw: p.s[start:p.pos]}, nil
	}
	first, err := p.value(depth + 1)
	if err != nil {
		return Value{}, err
	}
	p.skipSpace()
	if p.peek() != ':' {
		items := []Value{first}
		switch p.peek() {
		case ',':
			p.pos++
			rest, _, err := p.sequence('}', depth)
			if err != nil {
				return Value{}, err
			}
			items = append(items, rest...)
		case '}':
			p.pos++
		default:
			return Value{}, p.errorf("expected ',', ':' or '}', found %s", p.what())
		}
		return Value{Kind: KindSet, Raw: p.s[start:p.pos], Items: items}, nil
	}
	var pairs []Pair
	key := first
	for {
		p.pos++ // ':'
		val, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		pairs = append(pairs, Pair{Key: key, Value: val})
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return Value{Kind: KindDict, Raw: p.s[start:p.pos], Pairs: pairs}, nil
		default:
			return Value{}, p.errorf("expected ',' or '}', found %s", p.what())
		}
		p.skipSpace()
		if p.peek() == '}' {
			p.pos++
			return Value{Kind: KindDict, Raw: p.s[start:p.pos], Pairs: pairs}, nil
		}
		if key, err = p.value(depth + 1); err != nil {
			return Value{}, err
		}
		p.skipSpace()
		if p.peek() != ':' {
			return Value{}, p.errorf("expected ':', found %s", p.what())
		}
	}
}

// number reads an int, a float, or a complex number without real part.
func (p *parser) number() (Value, error) {
	start := p.pos
	end, isFloat, ok := numberEnd(p.s, start)
	if !ok {
		return Value{}, p.errorf("invalid number")
	}
	p.pos = end
	if p.peek() == 'j' {
		p.pos++
		return Value{Kind: KindComplex, Raw: p.s[start:p.pos]}, p.noNameAfter()
	}
	if err := p.noNameAfter(); err != nil {
		return Value{}, err
	}
	raw := p.s[start:end]
	if isFloat {
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			p.pos = start
			return Value{}, p.errorf("invalid float %q", raw)
		}
		return Value{Kind: KindFloat, Raw: raw, Float: f}, nil
	}
	return p.integer(raw, start)
}

func (p *parser) integer(raw string, start int) (Value, error) {
	digits := strings.TrimPrefix(raw, "-")
	if len(digits) > 1 && digits[0] == '0' {
		p.pos = start
		return Value{}, p.errorf("int with leading zeros")
	}
	if i, err := strconv.ParseInt(raw, 10, 64); err == nil {
		return Value{Kind: KindInt, Raw: raw, Int: i}, nil
	}
	if len(digits) > maxIntDigits {
		p.pos = start
		return Value{}, p.errorf("int with more than %d digits", maxIntDigits)
	}
	b, ok := new(big.Int).SetString(raw, 10)
	if !ok {
		p.pos = start
		return Value{}, p.errorf("invalid int %q", raw)
	}
	return Value{Kind: KindInt, Raw: raw, Big: b}, nil
}

// noNameAfter rejects a number run into a name, like "12ab".
func (p *parser) noNameAfter() error {
	if p.pos < len(p.s) {
		r, _ := utf8.DecodeRuneInString(p.s[p.pos:])
		if isNameChar(r) || r == '.' {
			return p.errorf("unexpected %s after a number", p.what())
		}
	}
	return nil
}

// numberEnd scans a number as repr() writes them from s[i]: an optional
// minus, then digits with optional fraction and exponent, or inf or nan.
// It reports where the number ends and whether it is a float.
func numberEnd(s string, i int) (end int, isFloat, ok bool) {
	if i < len(s) && s[i] == '-' {
		i++
	}
	for _, word := range [...]string{"inf", "nan"} {
		if strings.HasPrefix(s[i:], word) {
			return i + len(word), true, true
		}
	}
	d := digitsEnd(s, i)
	if d == i {
		return 0, false, false
	}
	i = d
	if i < len(s) && s[i] == '.' {
		isFloat = true
		i = digitsEnd(s, i+1)
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		isFloat = true
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := digitsEnd(s, i)
		if d == i {
			return 0, false, false
		}
		i = d
	}
	return i, isFloat, true
}

func digitsEnd(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// complexEnd recognizes repr() of a complex number with a real part,
// "(1+2j)", "(-0-1j)", "(nan+infj)", starting at the '(' at s[i].
func complexEnd(s string, i int) (int, bool) {
	i++
	end, _, ok := numberEnd(s, i)
	if !ok || end >= len(s) || (s[end] != '+' && s[end] != '-') {
		return 0, false
	}
	i = end
	if s[i] == '+' {
		i++ // numberEnd takes '-' itself
	}
	end, _, ok = numberEnd(s, i)
	if !ok || !strings.HasPrefix(s[end:], "j)") {
		return 0, false
	}
	return end + 2, true
}

// name reads a bare name, dotted or not, and what follows it: True,
// False, None, inf, nan and a call form are values; other names (such as
// NotImplemented) are opaque.
func (p *parser) name(depth int) (Value, error) {
	start := p.pos
	if !p.identifier() {
		return Value{}, p.errorf("unexpected %s", p.what())
	}
	for p.peek() == '.' {
		p.pos++
		if !p.identifier() {
			return Value{}, p.errorf("expected a name after '.', found %s", p.what())
		}
	}
	name := p.s[start:p.pos]
	if p.peek() == '(' {
		return p.call(name, start, depth)
	}
	switch name {
	case "None":
		return None(), nil
	case "True":
		return Bool(true), nil
	case "False":
		return Bool(false), nil
	case "inf", "nan":
		f, _ := strconv.ParseFloat(name, 64)
		return Value{Kind: KindFloat, Raw: name, Float: f}, nil
	case "infj", "nanj":
		return Value{Kind: KindComplex, Raw: name}, nil
	}
	return Value{Kind: KindOpaque, Raw: name}, nil
}

// identifier reads one Python identifier at pos.
func (p *parser) identifier() bool {
	start := p.pos
	for p.pos < len(p.s) {
		r, size := utf8.DecodeRuneInString(p.s[p.pos:])
		if p.pos == start && !isNameStart(r) || !isNameChar(r) {
			break
		}
		p.pos += size
	}
	return p.pos > start
}

func isNameStart(r rune) bool {
	return r == '_' || unicode.IsLetter(r)
}

func isNameChar(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r)
}

// call reads the arguments of a call form. Their values are kept when
// they are all literals; otherwise (keyword arguments, expressions) the
// value is opaque, its text running to the matching parenthesis.
func (p *parser) call(callee string, start, depth int) (Value, error) {
	open := p.pos
	p.pos++
	args, _, err := p.sequence(')', depth)
	if err == nil {
		return Value{Kind: KindCall, Raw: p.s[start:p.pos], Str: callee, Items: args}, nil
	}
	if errors.Is(err, errTooDeep) {
		return Value{}, err
	}
	p.pos = open
	if err := p.skipBalanced(); err != nil {
		return Value{}, err
	}
	return Value{Kind: KindOpaque, Raw: p.s[start:p.pos], Str: callee}, nil
}

// skipBalanced moves past the bracket at pos and everything up to its
// match, skipping quoted strings when quotes count.
func (p *parser) skipBalanced() error {
	var stack []byte
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch c {
		case '(':
			stack = append(stack, ')')
		case '[':
			stack = append(stack, ']')
		case '{':
			stack = append(stack, '}')
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != c {
				return p.errorf("unbalanced %q", c)
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				p.pos++
				return nil
			}
		case '\'', '"':
			if p.quotesInOpaque && quoteOpens(p.s, p.pos) {
				p.quotedOpaque = true
				end, ok := quotedEnd(p.s, p.pos)
				if !ok {
					return p.errorf("unterminated string")
				}
				p.pos = end
				continue
			}
		}
		p.pos++
	}
	return p.errorf("unexpected end of input in a call")
}

// skipAngle moves past a <...> repr, with nested angle brackets. Quoted
// strings, when quotes count, may hold any bracket; an unterminated
// quote is taken as a plain character.
func (p *parser) skipAngle() error {
	depth := 0
	for p.pos < len(p.s) {
		switch c := p.s[p.pos]; c {
		case '<':
			depth++
		case '>':
			depth--
			if depth == 0 {
				p.pos++
				return nil
			}
		case '\'', '"':
			if p.quotesInOpaque && quoteOpens(p.s, p.pos) {
				p.quotedOpaque = true
				if end, ok := quotedEnd(p.s, p.pos); ok {
					p.pos = end
					continue
				}
			}
		}
		p.pos++
	}
	return p.errorf("unexpected end of input in <...>")
}

// quoteOpens tells whether the quote at s[i], inside text we do not
// parse, opens a string: it does unless it follows a letter or digit, as
// the apostrophe in "<User O'Brien>" does. A single b, r or f before it is
// a string prefix.
func quoteOpens(s string, i int) bool {
	if i == 0 || !isAlnum(s[i-1]) {
		return true
	}
	switch s[i-1] {
	case 'b', 'r', 'f', 'u':
		return i == 1 || !isAlnum(s[i-2])
	}
	return false
}

func isAlnum(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c >= utf8.RuneSelf
}

// quotedEnd returns where the string literal opening at s[i] ends.
func quotedEnd(s string, i int) (int, bool) {
	q := s[i]
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case q:
			return i + 1, true
		}
	}
	return 0, false
}

// quoted reads a string literal at pos and returns its decoded content.
// In bytes literals only ASCII may appear and \u, \U and \N are not
// escapes.
func (p *parser) quoted(isBytes bool) (string, error) {
	q := p.s[p.pos]
	p.pos++
	start := p.pos
	// Fast path: most strings hold no escapes.
	for i := start; i < len(p.s); i++ {
		c := p.s[i]
		if c == q {
			if isBytes && !isASCII(p.s[start:i]) {
				break
			}
			p.pos = i + 1
			return p.s[start:i], nil
		}
		if c == '\\' {
			break
		}
	}
	var b strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == q:
			p.pos++
			return b.String(), nil
		case c == '\\':
			if err := p.escape(&b, isBytes); err != nil {
				return "", err
			}
		case isBytes && c >= utf8.RuneSelf:
			return "", p.errorf("non-ASCII character in a bytes literal")
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
	return "", p.errorf("unterminated string literal")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// escape decodes the escape sequence at pos, as Python's string literals
// define them. Unknown escapes keep their backslash, as Python does.
func (p *parser) escape(b *strings.Builder, isBytes bool) error {
	p.pos++ // the backslash
	if p.pos >= len(p.s) {
		return p.errorf("unterminated string literal")
	}
	c := p.s[p.pos]
	p.pos++
	switch c {
	case '\n':
		// a line continuation
	case '\\', '\'', '"':
		b.WriteByte(c)
	case 'a':
		b.WriteByte('\a')
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'v':
		b.WriteByte('\v')
	case '0', '1', '2', '3', '4', '5', '6', '7':
		n := int(c - '0')
		for i := 0; i < 2 && p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '7'; i++ {
			n = n*8 + int(p.s[p.pos]-'0')
			p.pos++
		}
		return p.writeCode(b, rune(n), isBytes)
	case 'x':
		return p.hexEscape(b, 2, isBytes)
	case 'u', 'U':
		if isBytes {
			b.WriteByte('\\')
			b.WriteByte(c)
			return nil
		}
		n := 4
		if c == 'U' {
			n = 8
		}
		return p.hexEscape(b, n, false)
	case 'N':
		if !isBytes {
			return p.errorf(`\N{...} escapes are not supported`)
		}
		b.WriteString(`\N`)
	default:
		p.pos--
		if isBytes && c >= utf8.RuneSelf {
			return p.errorf("non-ASCII character in a bytes literal")
		}
		b.WriteByte('\\')
	}
	return nil
}

func (p *parser) hexEscape(b *strings.Builder, n int, isBytes bool) error {
	if p.pos+n > len(p.s) {
		return p.errorf("truncated \\x, \\u or \\U escape")
	}
	code, err := strconv.ParseUint(p.s[p.pos:p.pos+n], 16, 32)
	if err != nil || strings.ContainsAny(p.s[p.pos:p.pos+n], "+-_") {
		return p.errorf("invalid hex escape %q", p.s[p.pos:p.pos+n])
	}
	p.pos += n
	return p.writeCode(b, rune(code), isBytes)
}

// writeCode writes a code point of a str, or a byte of a bytes literal.
// Lone surrogates, which Go strings cannot hold, become U+FFFD.
func (p *parser) writeCode(b *strings.Builder, r rune, isBytes bool) error {
	if isBytes {
		if r > 0xff {
			return p.errorf("escape out of range in a bytes literal")
		}
		b.WriteByte(byte(r))
		return nil
	}
	if r > unicode.MaxRune {
		return p.errorf("escape out of range: U+%X", r)
	}
	b.WriteRune(r)
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

package pylog

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// Field is one name=value pair of a form, decoded.
type Field struct {
	Key, Value string
}

// ParseForm decodes an application/x-www-form-urlencoded string, as
// HTTPHandler sends it in a POST body or a GET query, keeping the fields
// in order (url.ParseQuery loses it, and a record's extra keys are
// emitted in the order the application gave them). Fields are separated
// by '&' only, as in Go and Python today; '+' is a space. A malformed
// %-escape is an error that names the field, and so is a key that is
// not valid UTF-8. Invalid UTF-8 in a value is replaced by U+FFFD rather
// than failing the whole record.
//
// More than maxFields fields is an error; maxFields <= 0 means no limit.
func ParseForm(raw string, maxFields int) ([]Field, error) {
	return parseForm(raw, maxFields, nil, &decoder{})
}

// parseForm is ParseForm with the fields stored in dst's backing array
// when it has room, else in a new one, and decoded text in d's slab.
func parseForm(raw string, maxFields int, dst []Field, d *decoder) ([]Field, error) {
	n := strings.Count(raw, "&") + 1
	if maxFields > 0 && n > maxFields {
		// Count again without the empty pieces "a=1&&b=2" has, rarely.
		if n = countFields(raw); n > maxFields {
			return nil, fmt.Errorf("form has more than %d fields", maxFields)
		}
	}
	fields := dst[:0]
	if cap(fields) < n {
		fields = make([]Field, 0, n)
	}
	for i := 0; raw != ""; i++ {
		f, rest, ok, err := d.field(raw)
		raw = rest
		if err != nil {
			return nil, fmt.Errorf("form field %d: %w", i+1, err)
		}
		if ok {
			fields = append(fields, f)
		}
	}
	return fields, nil
}

func countFields(raw string) int {
	n := 0
	for raw != "" {
		var piece string
		piece, raw, _ = strings.Cut(raw, "&")
		if piece != "" {
			n++
		}
	}
	return n
}

// Byte classes of a form, for reading a field in one pass.
const (
	classAmp    = 1 << iota // '&' ends the field
	classEq                 // '=' ends the key
	classEscape             // '%' or '+': there is something to decode
	classHigh               // a byte of a multi-byte sequence, maybe invalid
)

var formClass = func() (t [256]byte) {
	t['&'], t['='], t['%'], t['+'] = classAmp, classEq, classEscape, classEscape
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = classHigh
	}
	return t
}()

// decoder reads the fields of one form. Decoded text goes into one slab
// per form rather than a string per escaped field (a Python record has
// several), and a Scratch keeps the slab for its next form; while a form
// is read the slab is only ever appended to, so the strings made over it
// do not change before the record is done with.
type decoder struct {
	slab []byte
}

// field reads the field at the start of raw and returns the rest after
// its '&'; an empty piece ("a=1&&b=2") is no field (ok false). Text
// that needs no decoding and is ASCII, which is nearly all of what
// urlencode makes, is neither copied nor checked for UTF-8.
func (d *decoder) field(raw string) (f Field, rest string, ok bool, err error) {
	eq, end := -1, len(raw)
	var keyClass, class byte
	for i := 0; i < len(raw); i++ {
		k := formClass[raw[i]]
		if k == 0 {
			continue
		}
		if k == classAmp {
			end = i
			break
		}
		if k == classEq && eq < 0 {
			eq, keyClass, class = i, class, 0
			continue
		}
		class |= k
	}
	if end < len(raw) {
		rest = raw[end+1:]
	}
	if end == 0 {
		return Field{}, rest, false, nil
	}
	rawKey, rawValue := raw[:end], ""
	if eq >= 0 {
		rawKey, rawValue = raw[:eq], raw[eq+1:end]
	} else {
		keyClass, class = class, 0
	}
	key, err := d.text(rawKey, keyClass, len(raw))
	if err != nil {
		return Field{}, rest, false, fmt.Errorf("key %s: %w", quoteBrief(rawKey), err)
	}
	if keyClass != 0 && !utf8.ValidString(key) {
		return Field{}, rest, false, fmt.Errorf("key %s is not valid UTF-8", quoteBrief(rawKey))
	}
	value, err := d.text(rawValue, class, len(raw)-eq-1)
	if err != nil {
		return Field{}, rest, false, fmt.Errorf("value of %s: %w", quoteBrief(key), err)
	}
	if class != 0 && !utf8.ValidString(value) {
		value = strings.ToValidUTF8(value, "\uFFFD")
	}
	return Field{Key: key, Value: value}, rest, true, nil
}

// text decodes '+' and %XX in s when class says it has them. rest is
// how much of the form is left from s on: decoding never grows text, so
// a slab of that much holds all the form's remaining text, and a form
// makes one slab at most.
func (d *decoder) text(s string, class byte, rest int) (string, error) {
	if class&classEscape == 0 {
		return s, nil
	}
	if cap(d.slab)-len(d.slab) < len(s) {
		d.slab = make([]byte, 0, max(rest, 256))
	}
	start := len(d.slab)
	b := d.slab[start : start+len(s)]
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", fmt.Errorf("invalid escape %s", quoteBrief(s[i:min(i+3, len(s))]))
			}
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		b[n] = c
		n++
	}
	d.slab = d.slab[:start+n]
	return unsafe.String(&b[0], n), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// quoteBrief quotes s for an error message, shortened.
func quoteBrief(s string) string {
	return strconv.Quote(intake.Brief(s))
}

package pylog

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
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
	return ParseFormReusing(raw, maxFields, nil)
}

// ParseFormReusing is ParseForm with the fields stored in dst's backing
// array when it has room, else in a new one.
func ParseFormReusing(raw string, maxFields int, dst []Field) ([]Field, error) {
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
		var piece string
		piece, raw, _ = strings.Cut(raw, "&")
		if piece == "" {
			continue
		}
		f, err := parseField(piece)
		if err != nil {
			return nil, fmt.Errorf("form field %d: %w", i+1, err)
		}
		fields = append(fields, f)
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

func parseField(piece string) (Field, error) {
	rawKey, rawValue, _ := strings.Cut(piece, "=")
	key, err := unescape(rawKey)
	if err != nil {
		return Field{}, fmt.Errorf("key %s: %w", quoteBrief(rawKey), err)
	}
	if !utf8.ValidString(key) {
		return Field{}, fmt.Errorf("key %s is not valid UTF-8", quoteBrief(rawKey))
	}
	value, err := unescape(rawValue)
	if err != nil {
		return Field{}, fmt.Errorf("value of %s: %w", quoteBrief(key), err)
	}
	return Field{Key: key, Value: strings.ToValidUTF8(value, "\uFFFD")}, nil
}

// unescape decodes '+' and %XX; it allocates only when there is
// something to decode.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b.WriteByte(' ')
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", fmt.Errorf("invalid escape %s", quoteBrief(s[i:min(i+3, len(s))]))
			}
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
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
	return strconv.Quote(brief(s))
}

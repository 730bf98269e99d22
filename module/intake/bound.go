package intake

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// MinRecordBound is the least a record's bound is lowered to by the
// bytes it arrived in (see Record.Limit): a short message still carries
// names the door derives (a syslog priority becomes level "warning" and
// facility "local0"), which a bound of MaxAmplification × a few bytes
// would cut from records nobody expanded.
const MinRecordBound = 512

// Limit returns the bound of r's content (see Bound) under a facility's
// max_record_size: MaxAmplification × Wire, but no less than
// MinRecordBound, and never more than maxRecord. Zero maxRecord means
// no limit other than the one by Wire.
func (r *Record) Limit(maxRecord int) int {
	if r.Wire <= 0 {
		return maxRecord
	}
	limit := max(MaxAmplification*r.Wire, MinRecordBound)
	if maxRecord > 0 && maxRecord < limit {
		return maxRecord
	}
	return limit
}

// Size is how many bytes r's content takes in a JSON entry: the message,
// logger name and level name JSON-escaped, the facility twice (it is in
// the entry's logger name too), and every attribute as `"key":value,`
// with its value escaped (a string), as zap writes it (a number, a bool,
// null) or as long as its document (KindJSON, nesting included). The
// rest of an entry (time, level, app, host, field names) does not depend
// on what the sender may make long, and is not counted.
func (r *Record) Size() int {
	n := escLen(r.Message) + escLen(r.Logger) + escLen(r.LevelName) + 2*escLen(r.Facility)
	for i := range r.Attrs {
		n += attrLen(&r.Attrs[i])
	}
	return n
}

// Bound cuts r's content (see Size) to at most limit bytes, reporting
// whether it cut anything. A record that fits is left as it is, at the
// cost of one pass over its strings and no allocation.
//
// Over the limit, the level name, the logger name and the facility are
// kept whole up to 256 bytes each (the facility, at most 200, always),
// then the message takes what it needs of what is left, then the
// attributes in order. The first attribute that does not fit is cut if
// it is a string or a JSON document (which becomes a string holding the
// start of the document's text) and dropped otherwise, with every
// attribute after it. Strings are cut at a character boundary.
func (r *Record) Bound(limit int) bool {
	if limit <= 0 || r.Size() <= limit {
		return false
	}
	const nameShare = 256
	left := limit
	take := func(s *string, share int) {
		keep := min(share, left)
		*s = cutEscaped(*s, keep)
		left -= escLen(*s)
	}
	take(&r.LevelName, nameShare)
	if f := 2 * escLen(r.Facility); f <= left {
		left -= f
	} else {
		r.Facility = cutEscaped(r.Facility, left/2)
		for len(r.Facility) > 0 && r.Facility[len(r.Facility)-1] == '.' {
			r.Facility = r.Facility[:len(r.Facility)-1]
		}
		left -= 2 * escLen(r.Facility)
	}
	take(&r.Logger, nameShare)
	take(&r.Message, left)
	for i := range r.Attrs {
		a := &r.Attrs[i]
		n := attrLen(a)
		if n <= left {
			left -= n
			continue
		}
		// `"key":"...",`: the key whole, and what is left of the value.
		room := left - escLen(a.Key) - 6
		if (a.Value.Kind == KindString || a.Value.Kind == KindJSON) && room > 0 {
			a.Value = String(cutEscaped(a.Value.Str, room))
			i++
		}
		clear(r.Attrs[i:])
		r.Attrs = r.Attrs[:i]
		break
	}
	return true
}

// attrLen is how many bytes a takes in the attrs object, with its comma.
func attrLen(a *Attr) int {
	return escLen(a.Key) + 4 + valueLen(&a.Value) // "key":v,
}

// valueLen is how many bytes zap's JSON encoder writes for v.
func valueLen(v *Value) int {
	switch v.Kind {
	case KindString:
		return escLen(v.Str) + 2
	case KindJSON:
		return len(v.Str)
	case KindInt:
		return intLen(v.Int)
	case KindFloat:
		return floatLen(v.Float)
	case KindBool:
		if v.Int != 0 {
			return 4
		}
		return 5
	default: // null
		return 4
	}
}

func intLen(i int64) int {
	n := 1
	if i < 0 {
		n++
		if i == math.MinInt64 {
			return 20
		}
		i = -i
	}
	for i >= 10 {
		i /= 10
		n++
	}
	return n
}

// floatLen is the length of zap's rendering of f: quoted "NaN", "+Inf"
// and "-Inf", else strconv's 'f' format, which writes 1e300 with all of
// its 301 digits.
func floatLen(f float64) int {
	switch {
	case math.IsNaN(f):
		return 5
	case math.IsInf(f, 0):
		return 6
	}
	var buf [24]byte
	// Shortest digits and exponent: d.ddde±xx.
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	neg := 0
	if e[0] == '-' {
		neg, e = 1, e[1:]
	}
	digits, exp := 0, 0
	for i, c := range e {
		if c == 'e' {
			for _, d := range e[i+2:] {
				exp = exp*10 + int(d-'0')
			}
			if e[i+1] == '-' {
				exp = -exp
			}
			break
		}
		if c != '.' {
			digits++
		}
	}
	// 'f' writes max(exp+1, 1) integer digits, and a point and the
	// fraction when digits reach below the units.
	n := max(exp+1, 1)
	if frac := digits - 1 - exp; frac > 0 {
		n += 1 + frac
	}
	return neg + n
}

// escLen is the length of s as zap's JSON encoder escapes it (without
// quotes): `\"`, `\\`, `\n`, `\r`, `\t` for those bytes, `\u00XX` for
// other control bytes, `\ufffd` for each byte of invalid UTF-8.
func escLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); {
		// Eight plain bytes at a time: the common case.
		if i+8 <= len(s) && plain8(uint64(s[i])|uint64(s[i+1])<<8|uint64(s[i+2])<<16|uint64(s[i+3])<<24|
			uint64(s[i+4])<<32|uint64(s[i+5])<<40|uint64(s[i+6])<<48|uint64(s[i+7])<<56) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			n += int(escExtra[c])
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			n += 5
		}
		i += size
	}
	return n
}

// plain8 reports whether the eight bytes of x are all printable ASCII
// other than '"' and '\\', which JSON writes as they are.
func plain8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	control := (x - 0x20*ones) &^ x & highs // a byte below 0x20
	q := x ^ '"'*ones
	quote := (q - ones) &^ q & highs
	b := x ^ '\\'*ones
	backslash := (b - ones) &^ b & highs
	return (control | quote | backslash | x&highs) == 0
}

// cutEscaped returns the longest prefix of s, cut at a character
// boundary, whose escaped length is at most max.
func cutEscaped(s string, max int) string {
	if max <= 0 {
		return ""
	}
	n := 0
	for i := 0; i < len(s); {
		c, size, w := s[i], 1, 1
		if c < utf8.RuneSelf {
			w += int(escExtra[c])
		} else {
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			w = size
			if r == utf8.RuneError && size == 1 {
				w = 6
			}
		}
		if n+w > max {
			return s[:i]
		}
		n += w
		i += size
	}
	return s
}

// escExtra is how many bytes escaping adds to each ASCII byte.
var escExtra = func() (t [utf8.RuneSelf]uint8) {
	for c := range 0x20 {
		t[c] = 5 // \u00XX
	}
	t['\n'], t['\r'], t['\t'], t['"'], t['\\'] = 1, 1, 1, 1, 1
	return t
}()

package access

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap/buffer"
)

// gunicornAtoms maps gunicorn's atoms (glogging.py, Logger.atoms) to
// what renders them.
var gunicornAtoms = map[string]op{
	"h": opClient,
	"l": opDash,
	"u": opUser,
	"t": opTime,
	"r": opRequestLine,
	"s": opStatus,
	"m": opMethod,
	"U": opPath,
	"q": opQuery,
	"H": opProto,
	"b": opBytesCLF,
	"B": opBytes,
	"f": opReferer,
	"a": opUserAgent,
	"T": opSeconds,
	"D": opMicros,
	"M": opMillis,
	"L": opDecimalSeconds,
	"p": opPID,
}

// parseGunicorn compiles a gunicorn access_log_format: Python
// %-formatting against the atoms dict, of which this supports the forms
// gunicorn documents, %(atom)s and %%.
func parseGunicorn(s string) (*format, error) {
	f := &format{style: gunicorn}
	for len(s) > 0 {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			f.addLiteral(s)
			break
		}
		if i > 0 {
			f.addLiteral(s[:i])
			s = s[i:]
		}
		if len(s) < 2 {
			return nil, fmt.Errorf("a lone %% at the end (write %%%% for a percent sign)")
		}
		switch s[1] {
		case '%':
			f.addLiteral("%")
			s = s[2:]
		case '(':
			// Python's %-formatting finds the closing parenthesis by
			// counting nested ones.
			depth, j := 1, 2
			for ; j < len(s) && depth > 0; j++ {
				switch s[j] {
				case '(':
					depth++
				case ')':
					depth--
				}
			}
			if depth > 0 {
				return nil, fmt.Errorf("%q: no closing parenthesis", s)
			}
			key, rest := s[2:j-1], s[j:]
			if rest == "" || rest[0] != 's' {
				return nil, fmt.Errorf("%%(%s): only %%(name)s conversions are supported", key)
			}
			it, err := gunicornAtom(key)
			if err != nil {
				return nil, fmt.Errorf("%%(%s)s: %v", key, err)
			}
			f.items = append(f.items, it)
			s = rest[1:]
		default:
			return nil, fmt.Errorf("%q: only %%(name)s and %%%% are supported", s[:2])
		}
	}
	return f, nil
}

// gunicornAtom returns the item for one atom. Header atoms ({name}i,
// {name}o) are case-insensitive, as gunicorn's SafeAtoms lowercases
// them; the others are single letters and case matters (h is not H).
func gunicornAtom(key string) (item, error) {
	if strings.HasPrefix(key, "{") {
		end := strings.LastIndexByte(key, '}')
		if end < 0 || end != len(key)-2 {
			return item{}, fmt.Errorf("want {header}i or {header}o")
		}
		name := key[1:end]
		switch key[end+1] {
		case 'i', 'I':
			return item{op: opReqHeader, arg: http.CanonicalHeaderKey(name)}, nil
		case 'o', 'O':
			return item{op: opRespHeader, arg: http.CanonicalHeaderKey(name)}, nil
		case 'e', 'E':
			//lint:ignore ST1005 Caddy is a name; the error follows "%X: " as apache's do
			return item{}, fmt.Errorf("Caddy's access log entries do not carry WSGI environ variables")
		}
		return item{}, fmt.Errorf("want {header}i or {header}o")
	}
	if o, ok := gunicornAtoms[key]; ok {
		return item{op: o}, nil
	}
	return item{}, fmt.Errorf("unknown atom (gunicorn would log \"-\"); known: h l u t r s m U q H b B f a T D M L p {header}i {header}o")
}

// renderGunicorn writes the line the way gunicorn 20.1's
// Logger.access does: each string atom has '"' replaced by '\"'
// (SafeAtoms) and, unlike in gunicorn, control characters escaped (see
// gunicornEscape); the time is the time of logging, header atoms take a
// header's last value, and f and a its values joined by ",". gunicorn
// reads request bytes as Latin-1 and its log files are UTF-8, so every
// byte of 0xa0-0xff of a request or response value comes out as two
// bytes (UTF-8 "é" is logged as "Ã©"); the user name, which gunicorn
// decodes as UTF-8, is written as it is.
func (f *format) renderGunicorn(b *buffer.Buffer, e *entry, t *timing) {
	for i := range f.items {
		it := &f.items[i]
		switch it.op {
		case opLiteral:
			b.AppendString(it.arg)
		case opClient:
			gunicornValue(b, e.client())
		case opDash:
			b.AppendByte('-')
		case opUser:
			if e.userID == "" {
				b.AppendByte('-')
			} else {
				gunicornEscape(b, e.userID, false)
			}
		case opTime:
			appendCLFTime(b, t.end)
		case opRequestLine:
			gunicornEscape(b, strings.ToUpper(e.method), true)
			b.AppendByte(' ')
			gunicornEscape(b, e.uri, true)
			b.AppendByte(' ')
			gunicornEscape(b, e.proto, true)
		case opStatus:
			b.AppendInt(e.statusCode())
		case opMethod:
			gunicornEscape(b, strings.ToUpper(e.method), true)
		case opPath:
			path, _, _ := splitURI(e.uri)
			gunicornEscape(b, unescape(path, func(byte) bool { return true }), true)
		case opQuery:
			_, query, _ := splitURI(e.uri)
			gunicornEscape(b, query, true)
		case opProto:
			gunicornEscape(b, e.proto, true)
		case opBytesCLF, opBytes:
			// b is str(resp.sent), "0" included: gunicorn logs "-" only
			// when nothing was sent at all, which Caddy does not log.
			b.AppendInt(e.size)
		case opReferer:
			gunicornJoined(b, e, "Referer")
		case opUserAgent:
			gunicornJoined(b, e, "User-Agent")
		case opSeconds, opMicros, opMillis, opDecimalSeconds:
			// request_time is a timedelta: seconds and microseconds
			// within a day (days are dropped, as gunicorn does).
			us := e.duration.Microseconds()
			sec, frac := us/1e6%86400, us%1e6
			switch it.op {
			case opSeconds:
				b.AppendInt(sec)
			case opMicros:
				b.AppendInt(sec*1e6 + frac)
			case opMillis:
				b.AppendInt(sec*1e3 + frac/1e3)
			default:
				b.AppendInt(sec)
				b.AppendByte('.')
				appendPadded(b, frac, 6)
			}
		case opPID:
			b.AppendByte('<')
			b.AppendString(t.pid)
			b.AppendByte('>')
		case opReqHeader:
			if it.arg == "Host" {
				gunicornValue(b, e.host)
				break
			}
			gunicornLast(b, e.reqHeaders, it.arg)
		case opRespHeader:
			gunicornLast(b, e.respHeaders, it.arg)
		}
	}
}

// gunicornValue appends an escaped request value, "-" when empty.
func gunicornValue(b *buffer.Buffer, s string) {
	if s == "" {
		b.AppendByte('-')
		return
	}
	gunicornEscape(b, s, true)
}

// gunicornLast appends the last value of a header, as gunicorn's atoms
// dict keeps it, or "-".
func gunicornLast(b *buffer.Buffer, headers headerSet, name string) {
	vals, ok := headers.get(name)
	if !ok {
		b.AppendByte('-')
		return
	}
	gunicornEscape(b, vals.last(), true)
}

// gunicornJoined appends a header's values joined by ",", as gunicorn's
// WSGI environ holds them (f and a read HTTP_REFERER and
// HTTP_USER_AGENT), or "-".
func gunicornJoined(b *buffer.Buffer, e *entry, name string) {
	vals, ok := e.reqHeaders.get(name)
	if !ok {
		b.AppendByte('-')
		return
	}
	for i := range vals.len() {
		if i > 0 {
			b.AppendByte(',')
		}
		gunicornEscape(b, vals.at(i), true)
	}
}

// gunicornEscape appends s with '"' replaced by '\"', as gunicorn's
// SafeAtoms does, and control characters escaped as Python's repr
// writes them (\t \n \r \xhh), where gunicorn would write them raw:
// each entry stays one line and no escape sequence reaches a terminal.
// With latin1, s holds request bytes: those of 0xa0-0xff are written as
// the UTF-8 encoding of the Latin-1 characters they stand for, and those
// of 0x80-0x9f, Latin-1's C1 controls, are escaped. Otherwise s is UTF-8
// text, whose C1 controls, line separators (U+2028, U+2029) and invalid
// bytes are escaped.
func gunicornEscape(b *buffer.Buffer, s string, latin1 bool) {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' {
			i++
			continue
		}
		if c >= 0x80 && !latin1 {
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case size == 1:
				// Not UTF-8: the byte, as Python shows bytes.
			case r <= 0x9f:
				c = byte(r)
			case r == 0x2028 || r == 0x2029:
				b.AppendString(s[start:i])
				if r == 0x2028 {
					b.AppendString(`\u2028`)
				} else {
					b.AppendString(`\u2029`)
				}
				i += size
				start = i
				continue
			default:
				i += size
				continue
			}
			b.AppendString(s[start:i])
			appendPyEscape(b, c)
			i += size
			start = i
			continue
		}
		b.AppendString(s[start:i])
		switch {
		case c == '"':
			b.AppendString(`\"`)
		case c >= 0xa0:
			b.AppendByte(0xc0 | c>>6)
			b.AppendByte(0x80 | c&0x3f)
		default:
			appendPyEscape(b, c)
		}
		i++
		start = i
	}
	b.AppendString(s[start:])
}

// appendPyEscape appends the control character c as Python's repr
// writes it.
func appendPyEscape(b *buffer.Buffer, c byte) {
	switch c {
	case '\t':
		b.AppendString(`\t`)
	case '\n':
		b.AppendString(`\n`)
	case '\r':
		b.AppendString(`\r`)
	default:
		appendHexByte(b, c)
	}
}

package access

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap/buffer"
)

// Presets: Apache's own definitions (httpd's default configuration),
// and gunicorn's default access_log_format.
const (
	commonFormat   = `%h %l %u %t "%r" %>s %b`
	combinedFormat = `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`
	gunicornFormat = `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`
)

// unavailable explains, for the Apache directives this encoder refuses,
// why: Caddy's access log entries do not carry the value, and a
// placeholder that is always "-" would only hide that.
var unavailable = map[byte]string{
	'A': "the local IP address",
	'e': "environment variables",
	'f': "the file name",
	'k': "the keep-alive request count",
	'L': "the request log ID",
	'R': "the handler",
	'X': "the connection status",
	'I': "bytes received including headers (mod_logio)",
	'O': "bytes sent including headers (mod_logio)",
	'S': "bytes transferred including headers (mod_logio)",
	'^': "trailers",
}

// parseApache compiles an Apache mod_log_config format string, the way
// httpd's parse_log_item does: literal text with the backslash escapes
// \\ \r \n \t (other backslashes are kept), and directives of the form
// %[!][<>][statuses,...][{arg}]X, in any order before the letter.
func parseApache(s string) (*format, error) {
	f := &format{style: apache}
	for len(s) > 0 {
		if s[0] != '%' {
			var lit []byte
			for len(s) > 0 && s[0] != '%' {
				c := s[0]
				s = s[1:]
				if c != '\\' || len(s) == 0 {
					lit = append(lit, c)
					continue
				}
				switch s[0] {
				case '\\':
					lit, s = append(lit, '\\'), s[1:]
				case 'r':
					lit, s = append(lit, '\r'), s[1:]
				case 'n':
					lit, s = append(lit, '\n'), s[1:]
				case 't':
					lit, s = append(lit, '\t'), s[1:]
				default:
					lit = append(lit, '\\')
				}
			}
			f.addLiteral(string(lit))
			continue
		}
		var it item
		directive := s
		s = s[1:]
	modifiers:
		for {
			if len(s) == 0 {
				return nil, fmt.Errorf("%q: the directive ends before its letter", directive)
			}
			switch c := s[0]; {
			case c == '!':
				it.negate = !it.negate
				s = s[1:]
			case c == '<' || c == '>' || c == ',':
				// Caddy logs one status: original and final are the same.
				s = s[1:]
			case c == '{':
				end := strings.IndexByte(s, '}')
				if end < 0 {
					return nil, fmt.Errorf("%q: no closing brace", directive)
				}
				it.arg, s = s[1:end], s[end+1:]
			case c >= '0' && c <= '9':
				n := 0
				for len(s) > 0 && s[0] >= '0' && s[0] <= '9' {
					n = n*10 + int(s[0]-'0')
					if n > 999 {
						return nil, fmt.Errorf("%q: status condition is not a status code", directive)
					}
					s = s[1:]
				}
				it.conds = append(it.conds, n)
			default:
				break modifiers
			}
		}
		letter := s[0]
		directive = directive[:len(directive)-len(s)+1]
		s = s[1:]
		if err := it.apacheDirective(letter); err != nil {
			return nil, fmt.Errorf("%s: %v", directive, err)
		}
		if it.op == opLiteral && len(it.conds) == 0 && !it.negate {
			f.addLiteral(it.arg)
			continue
		}
		f.items = append(f.items, it)
	}
	return f, nil
}

// addLiteral appends literal text, merging it with a preceding literal.
func (f *format) addLiteral(s string) {
	if n := len(f.items); n > 0 && f.items[n-1].op == opLiteral && len(f.items[n-1].conds) == 0 && !f.items[n-1].negate {
		f.items[n-1].arg += s
		return
	}
	f.items = append(f.items, item{op: opLiteral, arg: s})
}

// apacheDirective sets it up for the directive letter, with it.arg as
// read from the braces.
func (it *item) apacheDirective(letter byte) error {
	switch letter {
	case '%':
		it.op, it.arg = opLiteral, "%"
	case 'a', 'h':
		it.op = opClient
		if it.arg == "c" {
			it.op = opPeer
		}
	case 'l':
		it.op = opDash
	case 'u':
		it.op = opUser
	case 't':
		it.op = opTime
		return it.apacheTime()
	case 'r':
		it.op = opRequestLine
	case 's':
		it.op = opStatus
	case 'b':
		it.op = opBytesCLF
	case 'B':
		it.op = opBytes
	case 'i', 'o', 'C', 'n':
		if it.arg == "" {
			return fmt.Errorf("needs a name in braces, as in %%{Referer}%c", letter)
		}
		switch letter {
		case 'i':
			it.op, it.arg = opReqHeader, http.CanonicalHeaderKey(it.arg)
		case 'o':
			it.op, it.arg = opRespHeader, http.CanonicalHeaderKey(it.arg)
		case 'C':
			it.op = opCookie
		case 'n':
			it.op = opField
		}
	case 'D':
		it.op = opMicros
	case 'T':
		switch it.arg {
		case "", "s":
			it.op = opSeconds
		case "ms":
			it.op = opMillis
		case "us":
			it.op = opMicros
		default:
			return fmt.Errorf("unknown unit %q (want s, ms or us)", it.arg)
		}
	case 'm':
		it.op = opMethod
	case 'U':
		it.op = opPath
	case 'q':
		it.op = opQuery
	case 'H':
		it.op = opProto
	case 'v', 'V':
		it.op = opHost
	case 'P':
		if it.arg != "" && it.arg != "pid" {
			return fmt.Errorf("only the process ID is available, not %q", it.arg)
		}
		it.op = opPID
	case 'p':
		if it.arg != "remote" {
			return fmt.Errorf("only %%{remote}p (the client's port) is available: Caddy's access log entries do not carry the server's port")
		}
		it.op = opRemotePort
	default:
		if what, ok := unavailable[letter]; ok {
			//lint:ignore ST1005 Caddy is a name; the error follows "%X: " and docs/access.md quotes it
			return fmt.Errorf("Caddy's access log entries do not carry %s", what)
		}
		return fmt.Errorf("unrecognized directive %%%c", letter)
	}
	return nil
}

// apacheTime parses the argument of %{...}t.
func (it *item) apacheTime() error {
	arg := it.arg
	if rest, ok := strings.CutPrefix(arg, "begin:"); ok {
		arg = rest
	} else if rest, ok := strings.CutPrefix(arg, "end:"); ok {
		arg, it.end = rest, true
	}
	switch arg {
	case "":
		it.tkind = tCLF
	case "sec":
		it.tkind = tSec
	case "msec":
		it.tkind = tMsec
	case "usec":
		it.tkind = tUsec
	case "msec_frac":
		it.tkind = tMsecFrac
	case "usec_frac":
		it.tkind = tUsecFrac
	default:
		parts, err := parseStrftime(arg)
		if err != nil {
			return err
		}
		it.tkind, it.strf = tStrftime, parts
	}
	return nil
}

// renderApache writes the line the way httpd's mod_log_config does:
// every value that comes from the request or response is escaped by
// ap_escape_logitem, and a value that is not there is "-".
func (f *format) renderApache(b *buffer.Buffer, e *entry, t *timing) {
	for i := range f.items {
		it := &f.items[i]
		if len(it.conds) > 0 && !it.statusMatches(e.statusCode()) {
			b.AppendByte('-')
			continue
		}
		switch it.op {
		case opLiteral:
			b.AppendString(it.arg)
		case opClient:
			apacheValue(b, e.client())
		case opPeer:
			apacheValue(b, e.remoteIP)
		case opRemotePort:
			apacheValue(b, e.remotePort)
		case opDash:
			b.AppendByte('-')
		case opUser:
			apacheValue(b, e.userID)
		case opTime:
			tm := t.begin
			if it.end {
				tm = t.end
			}
			appendApacheTime(b, it, tm)
		case opRequestLine:
			apacheEscape(b, e.method)
			b.AppendByte(' ')
			apacheEscape(b, e.uri)
			b.AppendByte(' ')
			apacheEscape(b, e.proto)
		case opStatus:
			b.AppendInt(e.statusCode())
		case opBytesCLF:
			if e.size == 0 {
				b.AppendByte('-')
			} else {
				b.AppendInt(e.size)
			}
		case opBytes:
			b.AppendInt(e.size)
		case opReqHeader:
			apacheRequestHeader(b, e, it.arg)
		case opRespHeader:
			apacheResponseHeader(b, e, it.arg)
		case opCookie:
			apacheCookie(b, e, it.arg)
		case opField:
			appendField(b, e, it.arg, apacheEscape)
		case opMicros:
			b.AppendInt(e.duration.Microseconds())
		case opMillis:
			b.AppendInt(e.duration.Milliseconds())
		case opSeconds:
			b.AppendInt(int64(e.duration.Seconds()))
		case opMethod:
			apacheValue(b, e.method)
		case opPath:
			path, _, _ := splitURI(e.uri)
			apacheValue(b, apachePath(path))
		case opQuery:
			if _, query, ok := splitURI(e.uri); ok {
				b.AppendByte('?')
				apacheEscape(b, query)
			}
		case opProto:
			apacheValue(b, e.proto)
		case opHost:
			apacheValue(b, apacheHost(e.host))
		case opPID:
			b.AppendString(t.pid)
		}
	}
}

// statusMatches applies Apache's status conditions. (A "!" without a
// list of statuses is no condition at all, in httpd too.)
func (it *item) statusMatches(status int64) bool {
	in := false
	for _, c := range it.conds {
		if int64(c) == status {
			in = true
			break
		}
	}
	return in != it.negate
}

// apacheValue appends an escaped value, or "-" when it is empty: httpd
// logs "-" for values it does not have, and Caddy logs those as "".
func apacheValue(b *buffer.Buffer, s string) {
	if s == "" {
		b.AppendByte('-')
		return
	}
	apacheEscape(b, s)
}

// apacheEscape appends s escaped as httpd's ap_escape_logitem does:
// '"' and '\' get a backslash, \b \n \r \t \v their C escapes, and every
// other byte that is not printable ASCII (controls, DEL, and each byte
// of a UTF-8 sequence) becomes \xhh, so that a log line is always one
// line of ASCII.
func apacheEscape(b *buffer.Buffer, s string) {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			continue
		}
		b.AppendString(s[start:i])
		start = i + 1
		switch c {
		case '\b':
			b.AppendString(`\b`)
		case '\n':
			b.AppendString(`\n`)
		case '\r':
			b.AppendString(`\r`)
		case '\t':
			b.AppendString(`\t`)
		case '\v':
			b.AppendString(`\v`)
		case '"', '\\':
			b.AppendByte('\\')
			b.AppendByte(c)
		default:
			appendHexByte(b, c)
		}
	}
	b.AppendString(s[start:])
}

// appendHexByte appends c as \xhh, the escape httpd and Python's repr
// both write for a byte they show no other way.
func appendHexByte(b *buffer.Buffer, c byte) {
	const hex = "0123456789abcdef"
	b.AppendString(`\x`)
	b.AppendByte(hex[c>>4])
	b.AppendByte(hex[c&0xf])
}

// apacheRequestHeader appends %{Name}i: httpd merges repeated request
// headers into one value joined by ", " when it reads them.
func apacheRequestHeader(b *buffer.Buffer, e *entry, name string) {
	if name == "Host" {
		// Go moves Host out of the header map; Caddy logs it as host.
		apacheValue(b, e.host)
		return
	}
	vals, ok := e.reqHeaders.get(name)
	if !ok {
		b.AppendByte('-')
		return
	}
	appendJoined(b, vals, ", ", apacheEscape)
}

// apacheResponseHeader appends %{Name}o: httpd logs the first value of
// a response header, except Set-Cookie (all values, joined by ", ") and
// Content-Type (without its parameters).
func apacheResponseHeader(b *buffer.Buffer, e *entry, name string) {
	vals, ok := e.respHeaders.get(name)
	if !ok {
		b.AppendByte('-')
		return
	}
	switch name {
	case "Set-Cookie":
		appendJoined(b, vals, ", ", apacheEscape)
	case "Content-Type":
		v := vals.at(0)
		if semi := strings.IndexByte(v, ';'); semi >= 0 {
			v = strings.TrimRight(v[:semi], " \t\n\r\v\f")
		}
		apacheEscape(b, v)
	default:
		apacheEscape(b, vals.at(0))
	}
}

// apacheCookie appends %{name}C the way httpd's log_cookie finds it:
// pairs split on ';', names compared without case and trimmed of
// spaces, the first pair with a non-empty value wins. Caddy logs the
// Cookie header as "REDACTED" unless the server has log_credentials
// set, and then there is no cookie to find.
func apacheCookie(b *buffer.Buffer, e *entry, name string) {
	vals, ok := e.reqHeaders.get("Cookie")
	for i := 0; ok && i < vals.len(); i++ {
		for pair := range strings.SplitSeq(vals.at(i), ";") {
			k, v, found := strings.Cut(pair, "=")
			if !found || v == "" {
				continue
			}
			k = strings.TrimRight(strings.TrimLeft(k, " \t"), " \t\n\r\v\f")
			if k == "" || !strings.EqualFold(k, name) {
				continue
			}
			apacheEscape(b, strings.TrimRight(strings.TrimLeft(v, " \t"), " \t\n\r\v\f"))
			return
		}
	}
	b.AppendByte('-')
}

// appendJoined appends vals separated by sep, each escaped by esc.
func appendJoined(b *buffer.Buffer, vals valueList, sep string, esc func(*buffer.Buffer, string)) {
	for i := range vals.len() {
		if i > 0 {
			b.AppendString(sep)
		}
		esc(b, vals.at(i))
	}
}

// appendField appends the top-level field name (%{name}n), e.g. one
// added with log_append: strings escaped by esc, numbers and booleans
// as JSON would show them, "-" when absent or not a scalar.
func appendField(b *buffer.Buffer, e *entry, name string, esc func(*buffer.Buffer, string)) {
	var found *node
	for _, s := range e.tops {
		for i := s.lo; i < s.hi; i = next(s.nodes, i) {
			if s.nodes[i].kind == kNamespace {
				break
			}
			if s.nodes[i].key == name {
				found = &s.nodes[i]
			}
		}
	}
	if found == nil {
		b.AppendByte('-')
		return
	}
	switch found.kind {
	case kString, kByteString:
		if found.str == "" {
			b.AppendByte('-')
			return
		}
		esc(b, found.str)
	case kInt:
		b.AppendInt(int64(found.num))
	case kUint:
		b.AppendUint(found.num)
	case kFloat64, kFloat32:
		b.AppendFloat(math.Float64frombits(found.num), 64)
	case kBool:
		b.AppendBool(found.num != 0)
	case kDuration:
		// As Caddy's JSON shows durations by default: seconds.
		b.AppendFloat(time.Duration(found.num).Seconds(), 64)
	default:
		b.AppendByte('-')
	}
}

// splitURI splits a request URI into its path and query, and says
// whether it has a '?'. An absolute URI (a proxy request) loses its
// scheme and authority, as httpd's and gunicorn's parsers drop them
// from the path.
func splitURI(uri string) (path, query string, hasQuery bool) {
	if uri != "" && uri[0] != '/' {
		if i := strings.Index(uri, "://"); i >= 0 {
			rest := uri[i+3:]
			if j := strings.IndexAny(rest, "/?"); j >= 0 {
				uri = rest[j:]
			} else {
				uri = ""
			}
		}
	}
	path, query, hasQuery = strings.Cut(uri, "?")
	return path, query, hasQuery
}

// apacheHost returns the host httpd logs for %V (and, here, %v): the
// Host header without its port, lowercased as httpd stores it.
func apacheHost(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

// apachePath returns r->uri as httpd logs it for %U: the path with
// "." and ".." segments resolved and repeated slashes merged
// (MergeSlashes on, the default), then percent-decoded. Clean paths,
// the usual case, come back unchanged without allocating.
func apachePath(p string) string {
	if !strings.Contains(p, "%") && !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p
	}
	// httpd first decodes escaped unreserved characters (so that %2e%2e
	// counts as ".."), then normalizes, then decodes the rest.
	p = unescape(p, func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
	})
	var segs []string
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
			continue
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
			continue
		}
		segs = append(segs, seg)
	}
	out := "/" + strings.Join(segs, "/")
	if len(segs) > 0 && (strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")) {
		out += "/"
	}
	return unescape(out, func(byte) bool { return true })
}

// unescape decodes the %XX escapes whose decoded byte passes ok and
// leaves the others, and malformed ones, as they are.
func unescape(s string, ok func(byte) bool) string {
	if !strings.Contains(s, "%") {
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if c := hi<<4 | lo; ok1 && ok2 && ok(c) {
				out = append(out, c)
				i += 2
				continue
			}
		}
		out = append(out, s[i])
	}
	return string(out)
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// appendApacheTime appends a %t or %{...}t item for t (already in the
// encoder's time zone).
func appendApacheTime(b *buffer.Buffer, it *item, t time.Time) {
	switch it.tkind {
	case tCLF:
		appendCLFTime(b, t)
	case tStrftime:
		appendStrftime(b, it.strf, t)
	case tSec:
		b.AppendInt(t.Unix())
	case tMsec:
		b.AppendInt(t.UnixMilli())
	case tUsec:
		b.AppendInt(t.UnixMicro())
	case tMsecFrac:
		appendPadded(b, int64(t.Nanosecond()/1e6), 3)
	case tUsecFrac:
		appendPadded(b, int64(t.Nanosecond()/1e3), 6)
	}
}

// Package syslogmsg reads syslog messages as they arrive at a receiver:
// RFC 5424, RFC 3164 in the forms real daemons write it, and the bare
// "<PRI>message" that Python's logging.handlers.SysLogHandler and
// gunicorn's --log-syslog send. It also cuts stream transports (TCP,
// TLS) into messages, for both framings of RFC 6587, and maps a message
// onto the intake.Record every door into the applog app produces.
//
// Parsing never trusts what a message claims about its sender: the
// hostname it carries is kept as an attribute, never as Record.Host.
package syslogmsg

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Format tells which syslog format a message was read as.
type Format string

// The formats Parse recognises.
const (
	// RFC5424 is "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG".
	RFC5424 Format = "rfc5424"
	// RFC3164 is "<PRI>TIMESTAMP [HOSTNAME] TAG[PID]: MSG", with a BSD
	// timestamp ("Jan  2 15:04:05") or an RFC 3339 one, as rsyslog's
	// forwarding templates write it.
	RFC3164 Format = "rfc3164"
	// Bare is "<PRI>[TAG[PID]: ]MSG" with no header at all: what
	// Python's SysLogHandler sends (an ident, if set, then the
	// formatted record) and so gunicorn's syslog output.
	Bare Format = "bare"
)

// Message is a syslog message, parsed.
type Message struct {
	Facility int // 0 (kern) to 23 (local7)
	Severity int // 0 (emerg) to 7 (debug)

	// Timestamp is when the sender says the message was made; zero
	// when the message has none.
	Timestamp time.Time

	// Hostname is the host the message claims to come from.
	Hostname string

	// AppName is the program: RFC 5424's APP-NAME, RFC 3164's TAG,
	// a Python SysLogHandler's ident.
	AppName string

	ProcID string
	MsgID  string // RFC 5424 only

	// StructuredData is RFC 5424's STRUCTURED-DATA as it came
	// ("[id k=\"v\"]..."); empty when absent.
	StructuredData string

	// Message is the text, whole: a Python traceback keeps its lines.
	Message string

	Format Format
}

// maxField bounds the header fields (hostname, program, procid, msgid):
// RFC 5424 allows at most 255 bytes for any of them.
const maxField = 255

// maxTag bounds an RFC 3164 tag or a bare message's program name.
// RFC 3164 says 32 characters; gunicorn's "gunicorn.<proc_name>.access"
// is often longer.
const maxTag = 128

// ParseError is a message Parse cannot read.
type ParseError struct {
	Offset int    // in the message, where the problem is
	Reason string // what is wrong
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("syslog message at offset %d: %s", e.Offset, e.Reason)
}

func errAt(offset int, format string, args ...any) error {
	return &ParseError{Offset: offset, Reason: fmt.Sprintf(format, args...)}
}

// Parse reads one syslog message: a UDP datagram, or a frame cut from a
// stream by SplitFrames. Trailing NUL, CR and LF bytes are dropped (a
// Python SysLogHandler ends every message with a NUL); line breaks
// inside the message are kept. Invalid UTF-8 is replaced by U+FFFD.
//
// The format is told from the header: "<PRI>1 " followed by a timestamp
// or "-" is RFC 5424, and its header must then be well-formed; a BSD or
// RFC 3339 timestamp after the PRI is RFC 3164 (an RFC 3339 timestamp
// without an offset is in loc); anything else is a bare message. RFC
// 3164's hostname is optional: the first word after the timestamp is
// the tag when it ends with ':' or holds '[', the hostname otherwise,
// and the word after a hostname is the tag, colon or not. A bare
// message has a program only when it starts with a name of printable
// ASCII, an optional [pid], a colon and a space or the end ("myapp: ",
// "gunicorn.web.access: ", "worker[12]: "); so "WARNING:root:msg" has
// none. A message that merely starts with a word
// and a colon ("Note: ...") is read as having a program all the same:
// nothing in the bytes tells them apart.
//
// now and loc complete BSD timestamps, which have no year and no zone:
// the year is the latest that does not put the time more than 31 days
// after now, the zone loc (time.Local when nil).
//
// A message without a valid "<PRI>" is an error, as is an RFC 5424
// header with a missing or malformed field.
func Parse(b []byte, now time.Time, loc *time.Location) (Message, error) {
	return parse(b, now, loc, false)
}

// ParseInPlace is Parse with the Message's strings pointing into b
// rather than into a copy, when b is valid UTF-8: b must not change
// while they are in use. A receiver that decodes, submits and only then
// reads the next message into the same buffer saves a copy of every
// message (most of what the syslog path allocates, which the garbage
// collector pays for).
func ParseInPlace(b []byte, now time.Time, loc *time.Location) (Message, error) {
	return parse(b, now, loc, true)
}

func parse(b []byte, now time.Time, loc *time.Location, inPlace bool) (Message, error) {
	b = bytes.TrimRight(b, "\x00\r\n")
	if len(b) == 0 {
		return Message{}, errors.New("empty syslog message")
	}
	pri, n, err := parsePRI(b)
	if err != nil {
		return Message{}, err
	}
	m := Message{Facility: pri / 8, Severity: pri % 8}
	p := parser{b: b, pos: n, loc: loc}
	if utf8.Valid(b) {
		// One string for the whole message, of which every field is a
		// substring: fields end at ASCII bytes, so each is valid too.
		if inPlace {
			p.s = unsafe.String(unsafe.SliceData(b), len(b))
		} else {
			p.s = string(b)
		}
		p.valid = true
	}
	switch {
	case p.isRFC5424():
		m.Format = RFC5424
		err = p.rfc5424(&m)
	case p.rfc3164Timestamp(&m, now, loc):
		m.Format = RFC3164
		p.rfc3164(&m)
	default:
		m.Format = Bare
		p.tag(&m, tagStrict)
		m.Message = p.str(p.pos, len(p.b))
	}
	if err != nil {
		return Message{}, err
	}
	return m, nil
}

// Raw is the format of a message Salvage kept whole.
const Raw Format = "raw"

// Salvage keeps a message that Parse refused whole rather than lose
// it: the PRI when it has a valid one, else user.notice (13), as RFC
// 3164 section 4.3.3 has a relay do; the rest, after trailing NUL, CR
// and LF bytes are dropped, is the text, with no program, hostname or
// timestamp. It reports false for a message with no text at all. With
// inPlace, the text points into b as with ParseInPlace.
func Salvage(b []byte, inPlace bool) (Message, bool) {
	b = bytes.TrimRight(b, "\x00\r\n")
	m := Message{Facility: 1, Severity: 5, Format: Raw}
	if len(b) > 0 {
		if pri, n, err := parsePRI(b); err == nil {
			m.Facility, m.Severity = pri/8, pri%8
			b = b[n:]
		}
	}
	if len(b) == 0 {
		return Message{}, false
	}
	if inPlace && utf8.Valid(b) {
		m.Message = unsafe.String(unsafe.SliceData(b), len(b))
	} else {
		m.Message = text(b)
	}
	return m, true
}

// parsePRI reads "<PRI>" and returns its value and length.
func parsePRI(b []byte) (int, int, error) {
	if b[0] != '<' {
		return 0, 0, errAt(0, "no <PRI> at the start (%s)", quote(b[:min(len(b), 16)]))
	}
	pri, i := 0, 1
	for i < len(b) && i <= 4 && isDigit(b[i]) {
		pri = pri*10 + int(b[i]-'0')
		i++
	}
	switch {
	case i == 1 || i > 4:
		return 0, 0, errAt(1, "PRI must be 1 to 3 digits")
	case i == len(b) || b[i] != '>':
		return 0, 0, errAt(i, "PRI not closed by '>'")
	case pri > 191:
		return 0, 0, errAt(1, "PRI %d is above 191", pri)
	}
	return pri, i + 1, nil
}

type parser struct {
	b     []byte
	pos   int
	loc   *time.Location // the zone of timestamps without one
	s     string         // b as a string, when valid is set
	valid bool           // b is valid UTF-8
}

func (p *parser) rest() []byte { return p.b[p.pos:] }

// str returns b[i:j] as a string, invalid UTF-8 replaced.
func (p *parser) str(i, j int) string {
	if p.valid {
		return p.s[i:j]
	}
	return text(p.b[i:j])
}

// text turns message bytes into a string, invalid UTF-8 replaced.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// field reads a header field up to the next space (or the end): at
// least one byte, at most maxField, NILVALUE "-" read as "".
func (p *parser) field(name string) (string, error) {
	start := p.pos
	end := bytes.IndexByte(p.b[start:], ' ')
	if end < 0 {
		end = len(p.b) - start
	}
	switch {
	case end == 0:
		return "", errAt(start, "%s is empty", name)
	case end > maxField:
		return "", errAt(start, "%s longer than %d bytes", name, maxField)
	}
	p.pos = start + end
	if end == 1 && p.b[start] == '-' {
		return "", nil
	}
	return p.str(start, p.pos), nil
}

// space consumes the single space that separates header fields.
func (p *parser) space(after string) error {
	if p.pos >= len(p.b) {
		return errAt(p.pos, "message ends after %s", after)
	}
	if p.b[p.pos] != ' ' {
		return errAt(p.pos, "expected a space after %s, found %s", after, quote(p.b[p.pos:p.pos+1]))
	}
	p.pos++
	return nil
}

// How strictly tag reads a program name.
type tagMode uint8

const (
	// tagStrict is a bare message's program: the colon is required.
	tagStrict tagMode = iota
	// tagMarked is the first word after an RFC 3164 timestamp, which
	// is a tag rather than a hostname only when it ends with a colon
	// or a [pid].
	tagMarked
	// tagLoose is the word after an RFC 3164 hostname: the colon is
	// optional, as in rsyslog's and syslog-ng's parsers.
	tagLoose
)

// tag reads an RFC 3164 tag or a bare message's program, with an
// optional "[pid]", and the ':' and space after them. The name is
// printable ASCII up to a space, '[' or ':' (as rsyslog and syslog-ng
// read it; RFC 3164's "alphanumeric" is stricter than what programs
// send), at most maxTag bytes. Without a [pid], the colon must end the
// message or be followed by a space, so that "ERROR:root:boom",
// "http://..." or an IPv6 address is not taken for a program. A
// tagMarked tag may leave out the colon after its [pid], a tagLoose one
// may leave it out altogether ("webapp text"). It reports whether there
// was a tag; if not, nothing is consumed.
func (p *parser) tag(m *Message, mode tagMode) bool {
	b, i := p.b, p.pos
	for i < len(b) && i-p.pos < maxTag && isTagByte(b[i]) {
		i++
	}
	if i == p.pos || i == len(b) && mode != tagLoose {
		return false
	}
	nameEnd, pidStart, pidEnd := i, 0, 0 // no pid while pidEnd == 0
	if i < len(b) && b[i] == '[' {
		end := bytes.IndexByte(b[i:min(len(b), i+maxTag+2)], ']')
		if end < 2 || bytes.ContainsAny(b[i+1:i+end], " [") {
			return false
		}
		pidStart, pidEnd = i+1, i+end
		i += end + 1
	}
	switch {
	case i < len(b) && b[i] == ':':
		i++
		if pidEnd == 0 && i < len(b) && b[i] != ' ' {
			return false
		}
	case i < len(b) && b[i] != ' ':
		return false
	case mode == tagStrict, mode == tagMarked && pidEnd == 0:
		return false
	}
	if i < len(b) && b[i] == ' ' {
		i++
	}
	m.AppName, m.ProcID = p.str(p.pos, nameEnd), p.str(pidStart, pidEnd)
	p.pos = i
	return true
}

// isTagByte is what a program name may hold: printable ASCII but space,
// ':', '[' and ']'.
func isTagByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != ':' && c != '[' && c != ']'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// quote shows a few bytes of a message in an error.
func quote(b []byte) string {
	return strconv.QuoteToASCII(string(b))
}

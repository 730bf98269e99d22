package syslogmsg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// DefaultMaxFrame is the largest frame SplitFrames accepts unless told
// otherwise: RFC 5425 asks receivers to take 8192 bytes and allows
// more; Python tracebacks need more.
const DefaultMaxFrame = 64 << 10

// FrameTooLargeError is a frame over the limit. An octet-counted frame
// says its size up front; a delimited one is known to be too long when
// that many bytes have come without a delimiter.
type FrameTooLargeError struct {
	Size  int64 // the octet count; 0 for a delimited frame
	Limit int
}

func (e *FrameTooLargeError) Error() string {
	if e.Size > 0 {
		return fmt.Sprintf("octet-counted syslog frame of %d bytes exceeds the limit of %d", e.Size, e.Limit)
	}
	return fmt.Sprintf("delimited syslog frame longer than the limit of %d bytes", e.Limit)
}

// Framing is how a stream transport (TCP, TLS, a Unix stream socket)
// separates syslog messages.
type Framing string

// The framings NewSplitter knows.
const (
	// FramingAuto decides once per connection, from its first bytes:
	// see NewSplitter.
	FramingAuto Framing = "auto"
	// FramingOctet is RFC 6587's octet counting, which RFC 5425 (syslog
	// over TLS) requires: every frame is "LEN SP MSG", and message text
	// is never looked at. syslog-ng's syslog() driver and rsyslog's
	// omfwd with TCP_Framing="octet-counted" send it.
	FramingOctet Framing = "octet"
	// FramingLF is RFC 6587's non-transparent framing: a frame ends at
	// LF (a CR before it is dropped). rsyslog's omfwd and syslog-ng's
	// network() driver send it, escaping line breaks inside messages.
	FramingLF Framing = "lf"
	// FramingNUL ends a frame at a NUL byte: what Python's
	// logging.handlers.SysLogHandler (and so gunicorn) sends over TCP,
	// whose messages keep their line breaks.
	FramingNUL Framing = "nul"
)

// ParseFraming reads a framing name; "" is FramingAuto.
func ParseFraming(s string) (Framing, error) {
	switch f := Framing(s); f {
	case "":
		return FramingAuto, nil
	case FramingAuto, FramingOctet, FramingLF, FramingNUL:
		return f, nil
	}
	return "", fmt.Errorf("framing %q: want octet, lf, nul or auto", s)
}

// ErrNoOctetCount is a frame of an octet-counted stream that does not
// start with "LEN SP": the stream is out of step, and where the next
// frame starts cannot be known.
var ErrNoOctetCount = errors.New("octet-counted syslog stream: frame does not start with an octet count")

// SplitFrames returns a bufio.SplitFunc that cuts a syslog stream into
// messages with FramingAuto: NewSplitter(FramingAuto, maxSize).
func SplitFrames(maxSize int) bufio.SplitFunc { return NewSplitter(FramingAuto, maxSize) }

// NewSplitter returns a bufio.SplitFunc that cuts a syslog stream (TCP,
// TLS) into messages framed as f says ("" is FramingAuto). Text inside
// a message can never end it early, start another or change the
// framing: a connection's framing is fixed before its first message is
// returned, and frames are then cut by that framing alone.
//
// With FramingAuto the framing is decided once per connection, from its
// first frame, whose start the sender's software writes:
//
//   - If the stream starts with an octet count ("LEN SP", the first
//     digit not 0), the whole connection is octet-counted.
//   - Otherwise it is delimited. If the first frame holds a NUL before
//     any LF, frames end at NUL and LF is text. If an LF comes first,
//     the header after the first frame's <PRI> decides: an RFC 5424
//     header or an RFC 3164 timestamp is what syslog daemons write, and
//     they end frames at LF; a message without one ("<PRI>ident: text")
//     is what Python's SysLogHandler writes, ending frames at NUL, so the
//     LF is a line break inside it (a traceback) and the frame goes on
//     to the NUL. A first line that does not start with '<' (plain
//     text, a PROXY header the receiver was not told to expect) is not
//     SysLogHandler's, which always starts with <PRI>: LF ends frames.
//
// What auto cannot tell is a first message with a line break whose
// sender puts the message's own text right after <PRI>: Python's
// SysLogHandler with its default empty ident and a format starting with
// the message. If that text looks like a syslog header ("1 - host app
// ...", "Dec  4 20:24:01 ..."), the connection is read as LF-framed. An
// explicit framing takes the choice away from the stream: nul for
// SysLogHandler and gunicorn, lf or octet for rsyslog and syslog-ng,
// lf for a client sending "<PRI>text" lines without a header.
//
// LF, CR and NUL bytes between frames are skipped. A trailing CR is
// removed from a frame ended by CRLF. A final delimited frame without a
// delimiter is returned at the end of the stream, not lost; a final
// octet-counted frame cut short is an error wrapping io.ErrUnexpectedEOF.
// In an octet-counted stream a frame without a count is ErrNoOctetCount.
//
// A frame longer than maxSize (DefaultMaxFrame when <= 0) is a
// *FrameTooLargeError, reported as soon as it is known: for an
// octet-counted frame when its length has been read, for a delimited
// frame when maxSize bytes have come without a delimiter. Like any
// split error it stops the scanner: where the next frame starts cannot
// be known without reading the oversized one, so the receiver should
// log the error and close the connection. Senders with larger messages
// need a larger limit.
//
// The returned function keeps the state of one stream: use one per
// connection. Its scanner's buffer must hold maxSize+32 bytes, as
// NewScanner's does.
func NewSplitter(f Framing, maxSize int) bufio.SplitFunc {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrame
	}
	if f == "" {
		f = FramingAuto
	}
	s := &splitter{max: maxSize, framing: f}
	return s.split
}

// NewScanner returns a scanner of the syslog messages on r, framed as
// SplitFrames describes, with a buffer fit for frames of up to maxSize
// bytes (DefaultMaxFrame when <= 0). Tokens are valid until the next
// Scan.
func NewScanner(r io.Reader, maxSize int) *bufio.Scanner {
	return NewFramedScanner(r, FramingAuto, maxSize)
}

// NewFramedScanner is NewScanner with framing f.
func NewFramedScanner(r io.Reader, f Framing, maxSize int) *bufio.Scanner {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrame
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(maxSize+frameSlack, 16<<10)), maxSize+frameSlack)
	sc.Split(NewSplitter(f, maxSize))
	return sc
}

// frameSlack is the room a frame of maxSize bytes needs around it in the
// buffer: its octet count, the delimiter and the byte after it.
const frameSlack = 32

// maxCountDigits bounds an octet count: more digits than this is more
// than any limit.
const maxCountDigits = 10

type splitter struct {
	max     int
	framing Framing // FramingAuto until the first frame decides
}

func (s *splitter) split(data []byte, atEOF bool) (int, []byte, error) {
	skip := 0
	for skip < len(data) && isDelim(data[skip]) {
		skip++
	}
	d := data[skip:]
	if len(d) == 0 {
		return skip, nil, nil
	}
	if s.framing == FramingAuto {
		f, ok := decide(d, atEOF)
		if !ok {
			// Room for CR LF after a frame at the limit, or for an
			// octet count that may go on.
			if len(d) > max(s.max+2, maxCountDigits) {
				return 0, nil, &FrameTooLargeError{Limit: s.max}
			}
			return skip, nil, nil // wait for more of the first frame
		}
		s.framing = f
	}
	var (
		n   int
		tok []byte
		err error
	)
	switch s.framing {
	case FramingOctet:
		var ok bool
		if n, tok, err, ok = s.octetCounted(d, atEOF); !ok {
			return 0, nil, ErrNoOctetCount
		}
	case FramingNUL:
		n, tok, err = s.delimited(d, atEOF, 0)
	default:
		n, tok, err = s.delimited(d, atEOF, '\n')
	}
	if n == 0 && tok == nil && err == nil {
		return skip, nil, nil
	}
	return skip + n, tok, err
}

func isDelim(c byte) bool { return c == '\n' || c == '\r' || c == 0 }

// decide returns the framing of a connection whose first frame starts
// d (see NewSplitter), or false if more bytes are needed to tell. At
// the end of the stream it always decides.
func decide(d []byte, atEOF bool) (Framing, bool) {
	i := countDigits(d)
	switch {
	case i > 0 && i == len(d) && !atEOF && i <= maxCountDigits:
		return "", false // the count may go on
	case i > maxCountDigits, i > 0 && d[0] != '0' && i < len(d) && d[i] == ' ':
		return FramingOctet, true // (a count too long is octetCounted's error)
	}
	end := bytes.IndexAny(d, "\n\x00")
	switch {
	case end < 0 && !atEOF:
		return "", false
	case end >= 0 && d[end] == '\n' && (d[0] != '<' || hasHeader(d[:end])):
		return FramingLF, true
	}
	return FramingNUL, true
}

// octetCounted reads "LEN SP MSG". ok is false when d does not start
// with an octet count after all.
func (s *splitter) octetCounted(d []byte, atEOF bool) (n int, tok []byte, err error, ok bool) {
	if !isDigit(d[0]) || d[0] == '0' { // MSG-LEN has no leading zero
		return 0, nil, nil, false
	}
	i := countDigits(d)
	if i == len(d) && !atEOF && i <= maxCountDigits {
		return 0, nil, nil, true // the count goes on
	}
	if i == len(d) || d[i] != ' ' {
		if i > maxCountDigits {
			return 0, nil, &FrameTooLargeError{Size: bigCount(d[:i]), Limit: s.max}, true
		}
		return 0, nil, nil, false
	}
	size, _ := strconv.Atoi(string(d[:i]))
	if size > s.max {
		return 0, nil, &FrameTooLargeError{Size: int64(size), Limit: s.max}, true
	}
	end := i + 1 + size
	if len(d) < end {
		if atEOF {
			return 0, nil, fmt.Errorf("stream ends inside an octet-counted syslog frame (%d of %d bytes): %w",
				len(d)-i-1, size, io.ErrUnexpectedEOF), true
		}
		return 0, nil, nil, true
	}
	return end, d[i+1 : end], nil, true
}

// countDigits is how many digits d starts with, counted up to one more
// than an octet count may have (maxCountDigits).
func countDigits(d []byte) int {
	i := 0
	for i < len(d) && i <= maxCountDigits && isDigit(d[i]) {
		i++
	}
	return i
}

// bigCount is an octet count too long to matter, for an error message.
func bigCount(digits []byte) int64 {
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		return 1<<63 - 1
	}
	return n
}

// delimited reads a frame up to its delimiter, delim.
func (s *splitter) delimited(d []byte, atEOF bool, delim byte) (int, []byte, error) {
	end, n := bytes.IndexByte(d, delim), 0
	switch {
	case end >= 0:
		n = end + 1
	case atEOF: // the last frame, without a delimiter
		end, n = len(d), len(d)
	case len(d) > s.max+2: // room for CR LF after a frame at the limit
		return 0, nil, &FrameTooLargeError{Limit: s.max}
	default:
		return 0, nil, nil
	}
	tok := trimCR(d[:end])
	if len(tok) > s.max {
		return 0, nil, &FrameTooLargeError{Limit: s.max}
	}
	return n, tok, nil
}

func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}

// DatagramMessage returns the message a datagram carries: the datagram
// without its trailing NUL, CR and LF bytes, and without an octet count
// ("LEN SP MSG", as syslog-ng's loggen sends in RFC 5424 mode) when it
// starts with one. The count must equal the length of the rest of the
// datagram, with or without its trailing line break; a datagram that
// starts with a count that does not is an error, since no syslog
// message starts with a digit.
func DatagramMessage(p []byte) ([]byte, error) {
	if i := countDigits(p); i > 0 && p[0] != '0' && i < len(p) && p[i] == ' ' && i <= maxCountDigits {
		size, _ := strconv.Atoi(string(p[:i]))
		rest := p[i+1:]
		trimmed := bytes.TrimRight(rest, "\x00\r\n")
		if size != len(rest) && size != len(trimmed) {
			return nil, fmt.Errorf("%w: octet count %d, but %d bytes follow it", ErrDatagramCount, size, len(rest))
		}
		return trimmed, nil
	}
	return bytes.TrimRight(p, "\x00\r\n"), nil
}

// ErrDatagramCount is a datagram whose octet count is not its length.
var ErrDatagramCount = errors.New("octet-counted syslog datagram of the wrong length")

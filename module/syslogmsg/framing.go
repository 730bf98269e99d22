package syslogmsg

import (
	"bufio"
	"bytes"
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

// SplitFrames returns a bufio.SplitFunc that cuts a syslog stream (TCP,
// TLS) into messages, telling the framing of each from its first byte:
//
//   - A digit starts an octet-counted frame (RFC 6587 3.4.1, RFC 5425):
//     "LEN SP MSG". If the digits are not followed by a space, the frame
//     is read as a delimited one instead (some senders start messages
//     without a PRI), as rsyslog does.
//   - Anything else, normally '<', starts a delimited frame (RFC 6587
//     3.4.2), ended by LF, CRLF or NUL. Python's SysLogHandler ends each
//     message with a NUL and no LF, and its messages hold line breaks
//     (tracebacks), so on each stream the splitter learns which
//     delimiter is in use: once a frame has ended at a NUL, LF is text;
//     once a frame has ended at an LF followed by the start of a frame,
//     LF ends frames. Until then, an LF ends a frame only if what
//     follows it starts a frame ('<', a digit, or another delimiter), so
//     a frame ending at an LF waits for the next byte, or the end of
//     the stream, before it is returned.
//
// LF, CR and NUL bytes between frames are skipped. A trailing CR is
// removed from a frame ended by CRLF. A final frame without a delimiter
// is returned at the end of the stream, not lost; a final octet-counted
// frame cut short is an error wrapping io.ErrUnexpectedEOF.
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
func SplitFrames(maxSize int) bufio.SplitFunc {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrame
	}
	s := &splitter{max: maxSize}
	return s.split
}

// NewScanner returns a scanner of the syslog messages on r, framed as
// SplitFrames describes, with a buffer fit for frames of up to maxSize
// bytes (DefaultMaxFrame when <= 0). Tokens are valid until the next
// Scan.
func NewScanner(r io.Reader, maxSize int) *bufio.Scanner {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrame
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(maxSize+frameSlack, 16<<10)), maxSize+frameSlack)
	sc.Split(SplitFrames(maxSize))
	return sc
}

// frameSlack is the room a frame of maxSize bytes needs around it in the
// buffer: its octet count, the delimiter and the byte after it.
const frameSlack = 32

// maxCountDigits bounds an octet count: more digits than this is more
// than any limit.
const maxCountDigits = 10

// Delimiters a stream has been seen to use.
const (
	delimUnknown uint8 = iota
	delimLF
	delimNUL
)

type splitter struct {
	max   int
	delim uint8
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
	if isDigit(d[0]) {
		if n, tok, err, ok := s.octetCounted(d, atEOF); ok {
			return skip + n, tok, err
		}
	}
	n, tok, err := s.delimited(d, atEOF)
	if n == 0 && err == nil {
		return skip, nil, nil
	}
	return skip + n, tok, err
}

func isDelim(c byte) bool { return c == '\n' || c == '\r' || c == 0 }

// octetCounted reads "LEN SP MSG". ok is false when d does not start
// with an octet count after all.
func (s *splitter) octetCounted(d []byte, atEOF bool) (n int, tok []byte, err error, ok bool) {
	if d[0] == '0' { // MSG-LEN has no leading zero
		return 0, nil, nil, false
	}
	i := 0
	for i < len(d) && i <= maxCountDigits && isDigit(d[i]) {
		i++
	}
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

// bigCount is an octet count too long to matter, for an error message.
func bigCount(digits []byte) int64 {
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		return 1<<63 - 1
	}
	return n
}

// delimited reads a frame up to its delimiter; see SplitFrames.
func (s *splitter) delimited(d []byte, atEOF bool) (int, []byte, error) {
	end, n := s.delimiter(d, atEOF), 0
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

// delimiter returns the offset of the delimiter that ends the frame at
// the start of d, or -1 if it has not come yet, learning which
// delimiter the stream uses.
func (s *splitter) delimiter(d []byte, atEOF bool) int {
	switch s.delim {
	case delimNUL:
		return bytes.IndexByte(d, 0)
	case delimLF:
		return bytes.IndexAny(d, "\n\x00")
	}
	for i := 0; i < len(d); {
		j := bytes.IndexAny(d[i:], "\n\x00")
		if j < 0 {
			return -1
		}
		j += i
		if d[j] == 0 {
			s.delim = delimNUL
			return j
		}
		if j+1 == len(d) {
			if atEOF {
				return j
			}
			return -1 // wait for the byte after the LF
		}
		if next := d[j+1]; next == '<' || isDigit(next) || isDelim(next) {
			s.delim = delimLF
			return j
		}
		i = j + 1 // a line break inside the message
	}
	return -1
}

func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}

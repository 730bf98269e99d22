package pylog

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// SocketHandler and DatagramHandler frame each pickled record with its
// length: 4 bytes, big-endian, then the pickle. Their default ports are
// 9020 (TCP) and 9021 (UDP), logging.handlers.DEFAULT_TCP_LOGGING_PORT
// and DEFAULT_UDP_LOGGING_PORT.
const socketHeaderLen = 4

// FrameTooLargeError is a frame whose announced length is over the
// limit. It is reported as soon as the length is read, before any of
// the payload: the stream cannot be resynchronised after it, since
// there is no way to tell where the next frame starts but by reading
// past this one, so the connection should be closed.
type FrameTooLargeError struct {
	Size  int64
	Limit int
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds the limit of %d", e.Size, e.Limit)
}

// SplitSocketFrames returns a bufio.SplitFunc that cuts a SocketHandler
// stream into pickles: each token is one frame's payload, without the
// length. A length over maxSize (DefaultMaxPickle when <= 0) is a
// *FrameTooLargeError; a stream that ends inside a frame is an error
// wrapping io.ErrUnexpectedEOF. A zero-length frame is an empty token.
//
// The scanner's buffer must hold maxSize+4 bytes; NewSocketScanner sets
// it up so.
func SplitSocketFrames(maxSize int) bufio.SplitFunc {
	if maxSize <= 0 {
		maxSize = DefaultMaxPickle
	}
	return func(data []byte, atEOF bool) (int, []byte, error) {
		if len(data) < socketHeaderLen {
			if atEOF && len(data) > 0 {
				return 0, nil, fmt.Errorf("stream ends inside a frame header (%d of 4 bytes): %w", len(data), io.ErrUnexpectedEOF)
			}
			return 0, nil, nil
		}
		n := binary.BigEndian.Uint32(data)
		if uint64(n) > uint64(maxSize) {
			return 0, nil, &FrameTooLargeError{Size: int64(n), Limit: maxSize}
		}
		end := socketHeaderLen + int(n)
		if len(data) < end {
			if atEOF {
				return 0, nil, fmt.Errorf("stream ends inside a frame (%d of %d bytes): %w", len(data)-socketHeaderLen, n, io.ErrUnexpectedEOF)
			}
			return 0, nil, nil
		}
		return end, data[socketHeaderLen:end], nil
	}
}

// NewSocketScanner returns a scanner of the pickles a SocketHandler
// sends on r, with a buffer fit for frames of up to maxSize bytes
// (DefaultMaxPickle when <= 0). The buffer starts at 4KiB and grows as
// a frame's bytes arrive, never to the length it announces before they
// have. Tokens are only valid until the next Scan.
func NewSocketScanner(r io.Reader, maxSize int) *bufio.Scanner {
	if maxSize <= 0 {
		maxSize = DefaultMaxPickle
	}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, min(maxSize+socketHeaderLen, 4<<10)), maxSize+socketHeaderLen)
	s.Split(SplitSocketFrames(maxSize))
	return s
}

// DatagramPayload returns the pickle of a DatagramHandler datagram: the
// same frame as over TCP, one per datagram. The length must match the
// datagram's and be at most maxSize (DefaultMaxPickle when <= 0).
func DatagramPayload(datagram []byte, maxSize int) ([]byte, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxPickle
	}
	if len(datagram) < socketHeaderLen {
		return nil, fmt.Errorf("datagram of %d bytes is shorter than a frame header", len(datagram))
	}
	n := binary.BigEndian.Uint32(datagram)
	if uint64(n) > uint64(maxSize) {
		return nil, &FrameTooLargeError{Size: int64(n), Limit: maxSize}
	}
	if got := len(datagram) - socketHeaderLen; uint64(got) != uint64(n) {
		return nil, fmt.Errorf("datagram holds %d bytes after its header, which announces %d", got, n)
	}
	return datagram[socketHeaderLen:], nil
}

package pylog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// chunkReader hands out data at most size bytes a read, and records the
// largest read buffer offered against the bytes delivered before it.
type chunkReader struct {
	data      []byte
	size      int
	delivered int
	// over is set when a read offered more room than the scanner may
	// have reserved: its first buffer, or twice what has arrived.
	over int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > max(4<<10, 2*c.delivered) && c.over == 0 {
		c.over = len(p)
	}
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.size)], c.data)
	c.data = c.data[n:]
	c.delivered += n
	return n, nil
}

// referenceFrames cuts data into frames the obvious way: the frames
// before the first one that is over maxSize or cut short, and whether
// the stream ended with one of those.
func referenceFrames(data []byte, maxSize int) (frames [][]byte, tooLarge, short bool) {
	for len(data) > 0 {
		if len(data) < 4 {
			return frames, false, true
		}
		n := binary.BigEndian.Uint32(data)
		if uint64(n) > uint64(maxSize) {
			return frames, true, false
		}
		if uint64(len(data)-4) < uint64(n) {
			return frames, false, true
		}
		frames = append(frames, data[4:4+n])
		data = data[4+n:]
	}
	return frames, false, false
}

// FuzzSplitSocketFrames checks the SocketHandler framer against a plain
// reading of the stream, whatever the sizes of the reads, and that its
// buffer grows with the bytes that arrived, never to the length a frame
// announces before they have.
func FuzzSplitSocketFrames(f *testing.F) {
	f.Add([]byte(frame("N.")+frame("")+frame(typicalFrame[4:])), uint16(7), uint32(1<<20))
	f.Add([]byte(frame("abc")+"\x00\x01"), uint16(1), uint32(100))
	f.Add([]byte("\x00\xff\xff\xff"+"x"), uint16(3), uint32(16<<20))
	f.Add([]byte("\x7f\xff\xff\xffxyz"), uint16(4096), uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16, maxSize uint32) {
		limit := int(maxSize % (32 << 20))
		r := &chunkReader{data: data, size: int(chunk)%8192 + 1}
		sc := NewSocketScanner(r, limit)
		var got [][]byte
		for sc.Scan() {
			got = append(got, bytes.Clone(sc.Bytes()))
		}
		if limit <= 0 {
			limit = DefaultMaxPickle
		}
		want, tooLarge, short := referenceFrames(data, limit)
		if len(got) != len(want) {
			t.Fatalf("%d frames, want %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d: %q, want %q", i, got[i], want[i])
			}
		}
		err := sc.Err()
		var fe *FrameTooLargeError
		switch {
		case tooLarge && !errors.As(err, &fe):
			t.Fatalf("an oversized frame: error %v, want a FrameTooLargeError", err)
		case short && !errors.Is(err, io.ErrUnexpectedEOF):
			t.Fatalf("a stream cut inside a frame: error %v, want io.ErrUnexpectedEOF", err)
		case !tooLarge && !short && err != nil:
			t.Fatalf("a whole stream: error %v", err)
		}
		if r.over > 0 {
			t.Fatalf("a read offered %d bytes of buffer after %d had arrived", r.over, r.delivered)
		}
	})
}

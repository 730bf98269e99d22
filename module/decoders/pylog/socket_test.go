package pylog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

func frame(payload string) string {
	return string(binary.BigEndian.AppendUint32(nil, uint32(len(payload)))) + payload
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func scanAll(r io.Reader, max int) ([]string, error) {
	sc := NewSocketScanner(r, max)
	var out []string
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out, sc.Err()
}

func TestSplitSocketFrames(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	stream := frame("N.") + frame("") + frame(big) + frame(typicalFrame[4:])
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
	} {
		got, err := scanAll(wrap(strings.NewReader(stream)), 200<<10)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != 4 || got[0] != "N." || got[1] != "" || got[2] != big || got[3] != typicalFrame[4:] {
			t.Errorf("%s: got %d frames", name, len(got))
		}
	}
}

func TestSplitSocketFramesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		want     string
		eof      bool
	}{
		{name: "empty stream", in: ""},
		{name: "header cut", in: "\x00\x00", want: "stream ends inside a frame header (2 of 4 bytes)", eof: true},
		{name: "payload cut", in: frame("N.") + "\x00\x00\x00\x05N.", want: "stream ends inside a frame (2 of 5 bytes)", eof: true},
		{name: "too large", in: "\x00\x10\x00\x01" + strings.Repeat("x", 100), max: 1 << 20, want: "frame of 1048577 bytes exceeds the limit of 1048576"},
		{name: "hostile length", in: "\xff\xff\xff\xffx", want: "frame of 4294967295 bytes exceeds the limit of 1048576"},
	} {
		got, err := scanAll(strings.NewReader(tc.in), tc.max)
		if tc.want == "" {
			if err != nil || len(got) != 0 {
				t.Errorf("%s: %q, %v", tc.name, got, err)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) != tc.eof {
			t.Errorf("%s: errors.Is(%v, io.ErrUnexpectedEOF) != %v", tc.name, err, tc.eof)
		}
	}
}

// TestSplitSocketFramesRejectsBeforePayload checks that an oversized
// frame is refused once its header is read, not after its payload.
func TestSplitSocketFramesRejectsBeforePayload(t *testing.T) {
	in := frame("N.") + "\x7f\x00\x00\x00" + strings.Repeat("x", 1<<16)
	cr := &countingReader{r: strings.NewReader(in)}
	sc := NewSocketScanner(iotest.OneByteReader(cr), 1024)
	n := 0
	for sc.Scan() {
		n++
	}
	var tooLarge *FrameTooLargeError
	if !errors.As(sc.Err(), &tooLarge) || tooLarge.Size != 0x7f000000 || tooLarge.Limit != 1024 {
		t.Fatalf("err = %v, want a FrameTooLargeError", sc.Err())
	}
	if n != 1 || cr.n != len(frame("N."))+4 {
		t.Errorf("%d frames, %d bytes read before the error; want 1 and %d", n, cr.n, len(frame("N."))+4)
	}
}

func TestSplitSocketFramesOwnScanner(t *testing.T) {
	// With a scanner set up by hand, the split function still checks
	// its limit first.
	sc := bufio.NewScanner(strings.NewReader(frame(strings.Repeat("y", 5000))))
	sc.Split(SplitSocketFrames(100))
	if sc.Scan() || !strings.Contains(sc.Err().Error(), "exceeds the limit of 100") {
		t.Errorf("err = %v", sc.Err())
	}
}

func TestDatagramPayload(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: frame("N."), want: "N."},
		{in: frame(""), want: ""},
		{in: "\x00\x00", err: "datagram of 2 bytes is shorter than a frame header"},
		{in: frame("N.") + "x", err: "datagram holds 3 bytes after its header, which announces 2"},
		{in: "\x00\x00\x00\x05N.", err: "datagram holds 2 bytes after its header, which announces 5"},
		{in: "\x00\x20\x00\x00" + strings.Repeat("x", 0x200000), err: "frame of 2097152 bytes exceeds the limit of 1048576"},
	} {
		got, err := DatagramPayload([]byte(tc.in), 0)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("DatagramPayload(%q) error %v, want %q", intake.Brief(tc.in), err, tc.err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, []byte(tc.want)) {
			t.Errorf("DatagramPayload(%q) = %q, %v", intake.Brief(tc.in), got, err)
		}
	}
}

package syslogmsg

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// readers are the ways a stream may arrive: whole, a byte per read,
// and in halves.
var readers = map[string]func(io.Reader) io.Reader{
	"whole":    func(r io.Reader) io.Reader { return r },
	"one byte": iotest.OneByteReader,
	"half":     iotest.HalfReader,
}

func octet(msg string) string { return strconv.Itoa(len(msg)) + " " + msg }

func scanFrames(r io.Reader, max int) ([]string, error) {
	return scanFramed(r, FramingAuto, max)
}

func scanFramed(r io.Reader, f Framing, max int) ([]string, error) {
	sc := NewFramedScanner(r, f, max)
	var out []string
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out, sc.Err()
}

// Messages as senders write them: rsyslog's and syslog-ng's headers,
// Python's SysLogHandler's header-less "<PRI>ident: text".
const (
	h5424 = "<13>1 2026-12-04T20:22:39Z vm app - - - "
	h3164 = "<13>Dec  4 20:24:01 vm app: "
	hISO  = "<38>2026-12-04T20:22:39 localhost prg00000[1234]: "
)

var framingCases = []struct {
	name    string
	framing Framing // FramingAuto when empty
	in      string
	max     int
	want    []string
	wantErr string
}{
	{
		name: "LF, RFC 5424 headers",
		in:   h5424 + "a\n" + h5424 + "b\n",
		want: []string{h5424 + "a", h5424 + "b"},
	},
	{
		name: "CRLF, RFC 3164 headers",
		in:   h3164 + "a\r\n" + h3164 + "b\r\n",
		want: []string{h3164 + "a", h3164 + "b"},
	},
	{
		name: "LF, loggen's legacy header",
		in:   hISO + "seq: 1\n" + hISO + "seq: 2\n",
		want: []string{hISO + "seq: 1", hISO + "seq: 2"},
	},
	{
		name: "NUL, as Python's SysLogHandler sends over TCP",
		in:   "<14>myapp: one\x00<14>myapp: two\x00",
		want: []string{"<14>myapp: one", "<14>myapp: two"},
	},
	{
		name: "NUL stream keeps tracebacks whole",
		in: "<11>app: boom\nTraceback (most recent call last):\n  File \"x\", line 1\nValueError: x\x00" +
			"<14>app: next\x00<11>app: again\n<not a frame start\x00",
		want: []string{"<11>app: boom\nTraceback (most recent call last):\n  File \"x\", line 1\nValueError: x",
			"<14>app: next", "<11>app: again\n<not a frame start"},
	},
	{
		name: "traceback first, before any NUL was seen",
		in:   "<11>app: boom\nTraceback (most recent call last):\nValueError: x\x00<14>app: ok\x00",
		want: []string{"<11>app: boom\nTraceback (most recent call last):\nValueError: x", "<14>app: ok"},
	},
	{
		name: "issue 15: a first NUL-framed message cannot inject another app's",
		in:   "<14>shop: first\n<11>1 - - otherapp - - - injected\x00<14>shop: second\x00",
		want: []string{"<14>shop: first\n<11>1 - - otherapp - - - injected", "<14>shop: second"},
	},
	{
		name: "issue 15: a first NUL-framed message with a line starting with digits is not split",
		in:   "<14>shop: loaded\n42 rows\x00<14>shop: next\x00",
		want: []string{"<14>shop: loaded\n42 rows", "<14>shop: next"},
	},
	{
		name: "a later message's text cannot change a NUL stream's framing",
		in:   "<14>shop: one\x00<14>shop: two\n<11>1 - - otherapp - - - x\n12 <11>otherapp\x00",
		want: []string{"<14>shop: one", "<14>shop: two\n<11>1 - - otherapp - - - x\n12 <11>otherapp"},
	},
	{
		name: "a later message's text cannot change an LF stream's framing",
		in:   h5424 + "a\n" + h5424 + "b\x00c\n",
		want: []string{h5424 + "a", h5424 + "b\x00c"},
	},
	{
		name: "octet counting",
		in:   octet("<13>1 - h a - - - one") + octet("<13>1 - h a - - - two\nlines\x00too"),
		want: []string{"<13>1 - h a - - - one", "<13>1 - h a - - - two\nlines\x00too"},
	},
	{
		name: "octet counting with line breaks between frames",
		in:   octet("<13>1 - h a - - - one") + "\n" + octet("<13>1 - h a - - - two") + "\r\n",
		want: []string{"<13>1 - h a - - - one", "<13>1 - h a - - - two"},
	},
	{
		name:    "an octet-counted stream stays octet-counted",
		in:      octet("<13>counted one") + "<13>delimited\n",
		want:    []string{"<13>counted one"},
		wantErr: "does not start with an octet count",
	},
	{
		name: "a delimited stream stays delimited",
		in:   h5424 + "one\n" + octet(h5424+"two") + "\n",
		want: []string{h5424 + "one", octet(h5424 + "two")},
	},
	{
		name: "separators between frames",
		in:   "\n\r\n\x00" + h3164 + "a\n\n\n" + h3164 + "b",
		want: []string{h3164 + "a", h3164 + "b"},
	},
	{
		name: "LF stream: a continuation line is a frame of its own",
		in:   h5424 + "a\n  more\n" + h5424 + "c\n",
		want: []string{h5424 + "a", "  more", h5424 + "c"},
	},
	{
		name: "header-less lines in auto are one NUL frame (the documented ambiguity)",
		in:   "<13>b\n<13>c\n",
		want: []string{"<13>b\n<13>c\n"},
	},
	{
		name:    "header-less lines with framing lf",
		framing: FramingLF,
		in:      "<13>b\n<13>c\n",
		want:    []string{"<13>b", "<13>c"},
	},
	{
		name:    "framing nul ignores headers",
		framing: FramingNUL,
		in:      h5424 + "a\n" + h5424 + "b\x00" + octet("<13>x") + "\x00",
		want:    []string{h5424 + "a\n" + h5424 + "b", octet("<13>x")},
	},
	{
		name:    "framing lf ignores NUL and counts",
		framing: FramingLF,
		in:      "<14>a: one\x00two\n" + octet("<13>x") + "\n",
		want:    []string{"<14>a: one\x00two", octet("<13>x")},
	},
	{
		name:    "framing octet",
		framing: FramingOctet,
		in:      octet("<13>a\nb") + octet("<13>c"),
		want:    []string{"<13>a\nb", "<13>c"},
	},
	{
		name:    "framing octet refuses a delimited frame",
		framing: FramingOctet,
		in:      "<13>a\n",
		wantErr: "does not start with an octet count",
	},
	{
		name: "digits without a space are a delimited frame",
		in:   "2026-11-22 no PRI\n<13>x\n",
		want: []string{"2026-11-22 no PRI", "<13>x"},
	},
	{
		name: "leading zero is not a count",
		in:   "0 x\n",
		want: []string{"0 x"},
	},
	{
		name: "a first line without <PRI> is not SysLogHandler's",
		in:   "PROXY TCP4 192.168.1.64 192.168.1.3 7471 514\n" + hISO + "seq: 1\n" + hISO + "seq: 2\n",
		want: []string{"PROXY TCP4 192.168.1.64 192.168.1.3 7471 514", hISO + "seq: 1", hISO + "seq: 2"},
	},
	{
		name: "plain text lines",
		in:   "hello\nworld\n",
		want: []string{"hello", "world"},
	},
	{
		name: "final frame without delimiter",
		in:   "<13>a\x00<13>b",
		want: []string{"<13>a", "<13>b"},
	},
	{
		name: "final digits",
		in:   "<13>a\x00123",
		want: []string{"<13>a", "123"},
	},
	{
		name:    "octet count over the limit",
		in:      octet("<13>ok") + "70000 <13>" + strings.Repeat("x", 100),
		max:     65536,
		want:    []string{"<13>ok"},
		wantErr: "octet-counted syslog frame of 70000 bytes exceeds the limit of 65536",
	},
	{
		name:    "octet count of 11 digits",
		in:      "12345678901 <13>x",
		wantErr: "octet-counted syslog frame of 12345678901 bytes exceeds the limit of 65536",
	},
	{
		name:    "delimited frame over the limit",
		in:      h5424 + "ok\n" + h5424 + strings.Repeat("x", 200) + "\n<13>after\n",
		max:     100,
		want:    []string{h5424 + "ok"},
		wantErr: "delimited syslog frame longer than the limit of 100 bytes",
	},
	{
		name:    "first frame over the limit before framing is known",
		in:      "<13>" + strings.Repeat("x", 200),
		max:     100,
		wantErr: "delimited syslog frame longer than the limit of 100 bytes",
	},
	{
		name: "delimited frame at the limit",
		in:   h5424 + strings.Repeat("x", 100-len(h5424)) + "\r\n<13>after\n",
		max:  100,
		want: []string{h5424 + strings.Repeat("x", 100-len(h5424)), "<13>after"},
	},
	{
		name:    "octet-counted frame cut short",
		in:      octet("<13>a") + "20 <13>short",
		want:    []string{"<13>a"},
		wantErr: "stream ends inside an octet-counted syslog frame (9 of 20 bytes)",
	},
	{
		name: "empty",
		in:   "",
	},
}

func TestSplitFrames(t *testing.T) {
	for _, tc := range framingCases {
		for rname, wrap := range readers {
			got, err := scanFramed(wrap(strings.NewReader(tc.in)), tc.framing, tc.max)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("%s, %s: err = %v, want %q", tc.name, rname, err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("%s, %s:\n got %q\nwant %q", tc.name, rname, got, tc.want)
			}
		}
	}
}

func TestParseFraming(t *testing.T) {
	for in, want := range map[string]Framing{"": FramingAuto, "auto": FramingAuto, "octet": FramingOctet, "lf": FramingLF, "nul": FramingNUL} {
		if got, err := ParseFraming(in); err != nil || got != want {
			t.Errorf("ParseFraming(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFraming("LF"); err == nil {
		t.Error("ParseFraming(LF): no error")
	}
}

func TestSplitFramesErrors(t *testing.T) {
	_, err := scanFrames(strings.NewReader("30 <13>x"), 0)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated frame: %v does not wrap io.ErrUnexpectedEOF", err)
	}
	_, err = scanFrames(strings.NewReader("99999 <13>x"), 100)
	var tooLarge *FrameTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Size != 99999 || tooLarge.Limit != 100 {
		t.Errorf("oversized frame: %v", err)
	}
}

// TestSplitFramesStateIsPerStream checks that two scanners do not share
// what they learnt about their streams.
func TestSplitFramesStateIsPerStream(t *testing.T) {
	if got, _ := scanFrames(strings.NewReader("<14>a\x00<14>b\nc\x00"), 0); len(got) != 2 {
		t.Fatalf("NUL stream: %q", got)
	}
	if got, _ := scanFrames(strings.NewReader(h5424+"a\n"+h5424+"b\n"), 0); len(got) != 2 {
		t.Errorf("LF stream after a NUL stream: %q", got)
	}
}

// TestSplitFramesDoesNotWait checks that a frame is returned as soon as
// its delimiter arrives, without waiting for the next byte: the
// framing is decided from the first frame alone.
func TestSplitFramesDoesNotWait(t *testing.T) {
	for _, tc := range []struct {
		framing Framing
		in      string
		want    []string
	}{
		{FramingAuto, h5424 + "a\n" + h5424 + "b\n", []string{h5424 + "a", h5424 + "b"}},
		{FramingAuto, "<14>x: a\n\x00<14>x: b\x00", []string{"<14>x: a\n", "<14>x: b"}},
		{FramingAuto, octet("<13>a") + octet("<13>b"), []string{"<13>a", "<13>b"}},
		{FramingLF, "<13>a\n<13>b\n", []string{"<13>a", "<13>b"}},
	} {
		pr, pw := io.Pipe()
		timer := time.AfterFunc(10*time.Second, func() { pw.CloseWithError(errors.New("timed out: the scanner waited")) })
		sc := NewFramedScanner(pr, tc.framing, 0)
		go func() {
			_, _ = pw.Write([]byte(tc.in))
			// The last frame must come out before anything else is written.
		}()
		for _, want := range tc.want {
			if !sc.Scan() || sc.Text() != want {
				t.Fatalf("%q: Scan: %q, %v; want %q", tc.in, sc.Text(), sc.Err(), want)
			}
		}
		timer.Stop()
		pw.Close()
		pr.Close()
	}
}

func TestSplitFramesOwnScanner(t *testing.T) {
	sc := bufio.NewScanner(strings.NewReader("<13>" + strings.Repeat("x", 5000) + "\n"))
	sc.Split(SplitFrames(100))
	if sc.Scan() || sc.Err() == nil || !strings.Contains(sc.Err().Error(), "limit of 100") {
		t.Errorf("err = %v", sc.Err())
	}
}

func BenchmarkSplitFrames(b *testing.B) {
	var sb strings.Builder
	for i := range 1000 {
		sb.WriteString("<14>myapp: message number " + strconv.Itoa(i) + " with some text\x00")
	}
	in := sb.String()
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		sc := NewScanner(strings.NewReader(in), 0)
		n := 0
		for sc.Scan() {
			n++
		}
		if n != 1000 || sc.Err() != nil {
			b.Fatal(n, sc.Err())
		}
	}
}

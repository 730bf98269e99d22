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
	sc := NewScanner(r, max)
	var out []string
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out, sc.Err()
}

var framingCases = []struct {
	name    string
	in      string
	max     int
	want    []string
	wantErr string
}{
	{
		name: "LF",
		in:   "<13>a\n<13>b\n",
		want: []string{"<13>a", "<13>b"},
	},
	{
		name: "CRLF",
		in:   "<13>a\r\n<13>b\r\n",
		want: []string{"<13>a", "<13>b"},
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
		name: "octet counting",
		in:   octet("<13>1 - h a - - - one") + octet("<13>1 - h a - - - two\nlines\x00too"),
		want: []string{"<13>1 - h a - - - one", "<13>1 - h a - - - two\nlines\x00too"},
	},
	{
		name: "mixed framing",
		in: "<13>delimited one\n" + octet("<13>counted one") + "<13>delimited two\n" + octet("<13>counted\ntwo") +
			octet("<13>counted three") + "\n<13>last, no delimiter",
		want: []string{"<13>delimited one", "<13>counted one", "<13>delimited two", "<13>counted\ntwo",
			"<13>counted three", "<13>last, no delimiter"},
	},
	{
		name: "separators between frames",
		in:   "\n\r\n\x00<13>a\n\n\n<13>b",
		want: []string{"<13>a", "<13>b"},
	},
	{
		name: "LF stream: a continuation line is kept with its message",
		in:   "<13>a\n<13>b\n  more\n<13>c\n",
		want: []string{"<13>a", "<13>b", "  more", "<13>c"},
	},
	{
		name: "unknown stream: a continuation line is kept with its message",
		in:   "<13>b\n  more\n<13>c\n",
		want: []string{"<13>b\n  more", "<13>c"},
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
		in:      "<13>ok\n<13>" + strings.Repeat("x", 200) + "\n<13>after\n",
		max:     100,
		want:    []string{"<13>ok"},
		wantErr: "delimited syslog frame longer than the limit of 100 bytes",
	},
	{
		name: "delimited frame at the limit",
		in:   "<13>" + strings.Repeat("x", 96) + "\r\n<13>after\n",
		max:  100,
		want: []string{"<13>" + strings.Repeat("x", 96), "<13>after"},
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
			got, err := scanFrames(wrap(strings.NewReader(tc.in)), tc.max)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("%s, %s: err = %v, want %q", tc.name, rname, err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("%s, %s:\n got %q\nwant %q", tc.name, rname, got, tc.want)
			}
		}
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
	if got, _ := scanFrames(strings.NewReader("<14>a\n<14>b\n"), 0); len(got) != 2 {
		t.Errorf("LF stream after a NUL stream: %q", got)
	}
}

// TestSplitFramesDoesNotWaitWhenTold checks that, once a stream is
// known to end frames at LF, a frame is returned as soon as its LF
// arrives, without waiting for the next byte.
func TestSplitFramesDoesNotWaitWhenTold(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	timer := time.AfterFunc(10*time.Second, func() { pw.CloseWithError(errors.New("timed out: the scanner waited")) })
	defer timer.Stop()
	sc := NewScanner(pr, 0)
	go func() {
		_, _ = pw.Write([]byte("<13>a\n<13>b\n"))
		// The second frame must come out before anything else is written.
	}()
	for _, want := range []string{"<13>a", "<13>b"} {
		if !sc.Scan() || sc.Text() != want {
			t.Fatalf("Scan: %q, %v; want %q", sc.Text(), sc.Err(), want)
		}
	}
	pw.Close()
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
		if i%2 == 0 {
			sb.WriteString("<14>myapp: message number " + strconv.Itoa(i) + " with some text\x00")
		} else {
			sb.WriteString(octet("<13>1 - host app - - - message " + strconv.Itoa(i)))
		}
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

package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Verifier checks that the lines of an output file carry the sequence
// numbers 0 to Want-1, each exactly once.
type Verifier struct {
	Want     int
	Lines    int // lines read
	Present  int // distinct sequence numbers seen
	Dups     int // lines repeating a sequence number
	Foreign  int // lines with no valid sequence number
	FirstBad string
	seen     []bool
	tail     tail
}

// NewVerifier expects sequence numbers 0 to want-1.
func NewVerifier(want int) *Verifier {
	return &Verifier{Want: want, seen: make([]bool, want)}
}

var seqMark = []byte("seq=")

// Line records one line (without its newline).
func (v *Verifier) Line(line []byte) {
	v.Lines++
	seq, ok := FindSeq(line)
	switch {
	case !ok || seq >= v.Want:
		v.Foreign++
		if v.FirstBad == "" {
			v.FirstBad = string(line[:min(len(line), 300)])
		}
	case v.seen[seq]:
		v.Dups++
	default:
		v.seen[seq] = true
		v.Present++
	}
}

// FindSeq returns the number after the first "seq=" in line.
func FindSeq(line []byte) (int, bool) {
	i := bytes.Index(line, seqMark)
	if i < 0 {
		return 0, false
	}
	n, digits := 0, 0
	for _, c := range line[i+len(seqMark):] {
		if c < '0' || c > '9' || digits == 12 {
			break
		}
		n = n*10 + int(c-'0')
		digits++
	}
	return n, digits > 0
}

// Complete reports whether every sequence number arrived once and
// nothing else did.
func (v *Verifier) Complete() bool {
	return v.Present == v.Want && v.Lines == v.Want && v.Dups == 0 && v.Foreign == 0
}

// Err describes what is wrong, or is nil when Complete.
func (v *Verifier) Err() error {
	if v.Complete() {
		return nil
	}
	msg := fmt.Sprintf("%d of %d messages present (%d missing), %d lines, %d duplicates, %d lines without a valid seq",
		v.Present, v.Want, v.Want-v.Present, v.Lines, v.Dups, v.Foreign)
	if v.FirstBad != "" {
		msg += fmt.Sprintf("; first such line: %q", v.FirstBad)
	}
	return errors.New(msg)
}

// Missing returns up to n of the sequence numbers not seen.
func (v *Verifier) Missing(n int) []int {
	var out []int
	for i, ok := range v.seen {
		if !ok {
			out = append(out, i)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// readFrom feeds the complete lines that were appended to path since the
// last call.
func (v *Verifier) readFrom(f *os.File, buf []byte) error { return v.tail.read(f, buf, v.Line) }

// tail reads what is appended to a file, line by line.
type tail struct {
	off     int64
	partial []byte
}

// read passes each complete line appended to f since the last call to
// line (without its newline).
func (t *tail) read(f *os.File, buf []byte, line func([]byte)) error {
	for {
		n, err := f.ReadAt(buf, t.off)
		if n > 0 {
			t.off += int64(n)
			data := buf[:n]
			if len(t.partial) > 0 {
				data = append(append([]byte(nil), t.partial...), data...)
			}
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					break
				}
				line(data[:i])
				data = data[i+1:]
			}
			t.partial = append(t.partial[:0:0], data...) // buf is reused
		}
		if err == io.EOF || n < len(buf) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// end passes a last line without a newline, if any.
func (t *tail) end(line func([]byte)) {
	if len(t.partial) > 0 {
		line(t.partial)
		t.partial = nil
	}
}

// Follow reads path as a daemon appends to it until every line is
// there (Want lines with the sequence numbers complete), no new line
// has come for stall, or ctx ends. It returns when the last line it
// needed was seen, which is when the daemon had written everything.
// A file that does not exist yet is waited for.
func (v *Verifier) Follow(ctx context.Context, path string, stall time.Duration) (time.Time, error) {
	buf := make([]byte, 1<<20)
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	return v.follow(ctx, path, stall, func() error {
		if f == nil {
			if g, err := os.Open(path); err == nil {
				f = g
			} else if !os.IsNotExist(err) {
				return err
			}
		}
		if f != nil {
			if err := v.readFrom(f, buf); err != nil {
				return fmt.Errorf("reading %s: %w", path, err)
			}
		}
		return nil
	})
}

// follow calls poll, which feeds v what has arrived, every 5ms until v
// has Want lines, none has come for stall, or ctx ends; what names the
// file or files in errors.
func (v *Verifier) follow(ctx context.Context, what string, stall time.Duration, poll func() error) (time.Time, error) {
	lastGrowth, lastLines := time.Now(), -1
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := poll(); err != nil {
			return time.Time{}, err
		}
		now := time.Now()
		if v.Lines >= v.Want {
			return now, v.Err()
		}
		if v.Lines != lastLines {
			lastGrowth, lastLines = now, v.Lines
		}
		if now.Sub(lastGrowth) > stall {
			return now, fmt.Errorf("no new line in %s for %s: %w", what, stall, v.Err())
		}
		select {
		case <-ctx.Done():
			return now, fmt.Errorf("%w: %w", ctx.Err(), v.Err())
		case <-tick.C:
		}
	}
}

// Settle reads whatever else arrives at path within d: a daemon that
// wrote a message twice, or extra lines, shows it here.
func (v *Verifier) Settle(path string, d time.Duration) error {
	time.Sleep(d)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := v.readFrom(f, make([]byte, 1<<20)); err != nil {
		return err
	}
	v.tail.end(v.Line)
	return v.Err()
}

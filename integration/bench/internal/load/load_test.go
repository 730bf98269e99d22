package load

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSendSyslogPrograms receives a mixed load: message seq names
// Programs[seq%2] as its APP-NAME, and every message has the size asked
// for, whatever its program's length.
func TestSendSyslogPrograms(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const total, size = 1000, 200
	programs := []string{"app0.f0", "application1.facility2"}
	got := make(chan []string, 2)
	for range 2 {
		go func() {
			conn, err := l.Accept()
			if err != nil {
				got <- nil
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			var msgs []string
			r := bufio.NewReader(conn)
			for {
				n, err := r.ReadString(' ')
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Error(err)
					break
				}
				length, _ := strconv.Atoi(strings.TrimSpace(n))
				msg := make([]byte, length)
				if _, err := io.ReadFull(r, msg); err != nil {
					t.Error(err)
					break
				}
				msgs = append(msgs, string(msg))
			}
			got <- msgs
		}()
	}
	res, err := SendSyslog(context.Background(), SyslogSpec{Addr: l.Addr().String(), Total: total, Conns: 2, Size: size, Programs: programs})
	if err != nil || res.Sent != total {
		t.Fatalf("sent %d of %d: %v", res.Sent, total, err)
	}
	seen := map[int]bool{}
	for range 2 {
		for _, m := range <-got {
			seq, ok := FindSeq([]byte(m))
			if !ok {
				t.Fatalf("no seq in %q", m)
			}
			seen[seq] = true
			if f := strings.Fields(m); f[3] != programs[seq%2] {
				t.Errorf("message %d names %q, want %q", seq, f[3], programs[seq%2])
			}
			if len(m) != size {
				t.Errorf("message %d has %d bytes, want %d", seq, len(m), size)
			}
		}
	}
	if len(seen) != total {
		t.Errorf("%d distinct messages, want %d", len(seen), total)
	}
}

// TestFilesVerifier: a message in another file than its own, a repeated
// one, and a missing one each fail the check.
func TestFilesVerifier(t *testing.T) {
	place := func(seq int) int { return seq % 2 }
	for _, tc := range []struct {
		name   string
		files  [2]string
		errHas string
	}{
		{"complete", [2]string{"seq=0\nseq=2\n", "seq=1\nseq=3\n"}, ""},
		{"misplaced", [2]string{"seq=0\nseq=2\nseq=3\n", "seq=1\n"}, "wrong file"},
		{"repeated", [2]string{"seq=0\nseq=2\nseq=2\n", "seq=1\nseq=3\n"}, "1 duplicates"},
		{"missing", [2]string{"seq=0\n", "seq=1\nseq=3\n"}, "1 missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			paths := []string{filepath.Join(dir, "a", "0.log"), filepath.Join(dir, "b", "1.log")}
			for i, p := range paths {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(tc.files[i]), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			v := NewFilesVerifier(4, paths, place)
			defer v.Close()
			_, err := v.Follow(context.Background(), 50*time.Millisecond)
			if err == nil {
				err = v.Settle(0)
			}
			switch {
			case tc.errHas == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
				t.Fatalf("error %v, want one saying %q", err, tc.errHas)
			}
		})
	}
}

package receiver

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"

	proxyproto "github.com/pires/go-proxyproto"
)

// TestLFProxyHeader checks what the PROXY parser makes of a connection's
// start once lfProxyConn has read it, written in one piece or a byte at
// a time.
func TestLFProxyHeader(t *testing.T) {
	long := "PROXY TCP4 " + strings.Repeat("1", 120) + "\n<13>x\n"
	for _, tc := range []struct {
		name, in string
		source   string // the client the parser reports; "" for none
		rest     string // what is read after the header
		wantErr  bool
	}{
		{name: "loggen: LF alone", in: "PROXY TCP4 192.168.1.64 192.168.1.3 7471 514\n<38>x\n",
			source: "192.168.1.64:7471", rest: "<38>x\n"},
		{name: "CRLF", in: "PROXY TCP4 192.168.1.64 192.168.1.3 7471 514\r\n120 <38>x",
			source: "192.168.1.64:7471", rest: "120 <38>x"},
		{name: "TCP6 with LF", in: "PROXY TCP6 2001:db8::1 2001:db8::2 1000 514\n<38>y",
			source: "[2001:db8::1]:1000", rest: "<38>y"},
		{name: "no header", in: "<13>PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", rest: "<13>PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"},
		{name: "header too long", in: long, wantErr: true},
	} {
		for _, oneByte := range []bool{false, true} {
			// The parser wants the header in one read; lfProxyConn
			// gathers it, so a byte at a time works too.
			size := len(tc.in)
			if oneByte {
				size = 1
			}
			lc := &lfProxyConn{Conn: &chunkConn{data: []byte(tc.in), size: size}}
			br := bufio.NewReader(readAll{lc})
			h, err := proxyproto.Read(br)
			switch {
			case tc.wantErr:
				if err == nil {
					t.Errorf("%s: no error", tc.name)
				}
			case tc.source == "":
				if err != proxyproto.ErrNoProxyProtocol {
					t.Errorf("%s: %v, %v", tc.name, h, err)
				}
			case err != nil || h.SourceAddr.String() != tc.source:
				t.Errorf("%s (one byte %v): %v, %v", tc.name, oneByte, h, err)
			}
			if !tc.wantErr {
				if rest, _ := io.ReadAll(br); string(rest) != tc.rest {
					t.Errorf("%s (one byte %v): read %q after the header, want %q", tc.name, oneByte, rest, tc.rest)
				}
			}
		}
	}
}

// readAll is a reader that hands out what lfProxyConn returns.
type readAll struct{ r io.Reader }

func (r readAll) Read(p []byte) (int, error) { return r.r.Read(p) }

// FuzzLFProxyHeader checks that lfProxyConn changes nothing but a bare
// LF ending a PROXY v1 header within its 107 bytes, whatever comes and
// however it is cut into writes.
func FuzzLFProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.168.1.64 192.168.1.3 7471 514\n<38>x\n"), uint8(0))
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nrest"), uint8(3))
	f.Add([]byte("PROX"), uint8(1))
	f.Add([]byte("<13>x\n"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		// chunkConn, not a net.Pipe and a writer goroutine: nothing to
		// schedule or close per execution.
		lc := &lfProxyConn{Conn: &chunkConn{data: in, size: int(chunk%16) + 1}}
		got, err := io.ReadAll(lc)
		if err != nil {
			t.Fatal(err)
		}
		want := in
		if strings.HasPrefix(string(in), "PROXY ") {
			if i := strings.IndexByte(string(in[:min(len(in), maxProxyV1)]), '\n'); i >= 0 && in[i-1] != '\r' {
				want = append(append(append([]byte{}, in[:i]...), '\r'), in[i:]...)
			}
		}
		if string(got) != string(want) {
			t.Fatalf("read %q, want %q", got, want)
		}
	})
}

// chunkConn is a connection whose reads return at most size bytes of
// data, as a peer writing in small pieces; lfProxyConn only reads.
type chunkConn struct {
	net.Conn
	data []byte
	size int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.size)], c.data)
	c.data = c.data[n:]
	return n, nil
}

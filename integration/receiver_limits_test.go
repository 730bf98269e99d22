package integration

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// workerCaddyfile is a Caddyfile with a python_socket receiver on listen
// (such as "tcp/127.0.0.1:9020") for app worker, with the receiver
// options opts, writing the app's records to {{.Dir}}/worker.log.
func workerCaddyfile(listen, opts string) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		python_socket %s {
			app worker%s
		}
	}
	log worker {
		include applog.worker
		output file {{.Dir}}/worker.log
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	respond "ok"
}
`, listen, opts)
}

// frameClient prints SocketHandler frames (length + pickle), hex-encoded.
const frameClient = `
import logging, logging.handlers, sys
h = logging.handlers.SocketHandler("127.0.0.1", 1)
for msg in sys.argv[1:]:
    r = logging.LogRecord("edge", logging.INFO, "x.py", 1, msg, None, None)
    print(h.makePickle(r).hex())
`

// pyFrames returns SocketHandler frames (length + pickle) of records
// with the messages msgs, made by Python's own SocketHandler.makePickle.
func pyFrames(t *testing.T, dir string, msgs ...string) [][]byte {
	t.Helper()
	out, _ := runPython(t, dir, frameClient, msgs...)
	var frames [][]byte
	for _, h := range strings.Fields(out) {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, b)
	}
	if len(frames) != len(msgs) {
		t.Fatalf("python made %d frames of %d", len(frames), len(msgs))
	}
	return frames
}

func TestReceiverLimitsAndProxyProtocol(t *testing.T) {
	port := freePort(t)
	s := startCaddy(t, workerCaddyfile(fmt.Sprintf("tcp/127.0.0.1:%d", port), `
			proxy_protocol {
				allow 127.0.0.1/32
			}
			max_connections 3
			read_timeout 1s`))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	frames := pyFrames(t, s.Dir, "via v1", "via v2", "plain", "after limits")
	send := func(header []byte, frame []byte) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(append(header, frame...)); err != nil {
			t.Fatal(err)
		}
	}

	// PROXY v1 from an allowed peer: the host is the one in the header.
	send([]byte("PROXY TCP4 203.0.113.7 127.0.0.1 40000 9020\r\n"), frames[0])
	// PROXY v2, IPv6.
	v2 := proxyproto.HeaderProxyFromAddrs(2,
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort("[2001:db8::1]:40000")),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort("[2001:db8::2]:9020")))
	hdr, err := v2.Format()
	if err != nil {
		t.Fatal(err)
	}
	send(hdr, frames[1])
	// No header at all: the peer itself.
	send(nil, frames[2])

	lines := waitLines(t, filepath.Join(s.Dir, "worker.log"), 3)
	hosts := map[string]string{}
	for _, l := range lines {
		hosts[l["msg"].(string)] = fmt.Sprint(l["host"])
	}
	for msg, host := range map[string]string{"via v1": "203.0.113.7", "via v2": "2001:db8::1", "plain": "127.0.0.1"} {
		if hosts[msg] != host {
			t.Errorf("%q: host %q, want %q (all: %v)", msg, hosts[msg], host, hosts)
		}
	}

	// A client that sends part of a message and stalls is cut off after
	// read_timeout.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := slow.Write(frames[3][:6]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(slow); err != nil {
		t.Fatalf("stalled connection not closed by the server: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stalled connection closed after %v, want about read_timeout (1s)", took)
	}

	// max_connections 3: with three open, a fourth is closed at once.
	var open []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		open = append(open, c)
	}
	time.Sleep(200 * time.Millisecond) // let the server count them
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection over max_connections: read %v, want EOF", err)
	}
	extra.Close()
	for _, c := range open {
		c.Close()
	}
	time.Sleep(200 * time.Millisecond)

	// Others are still served.
	send(nil, frames[3])
	if lines := waitLines(t, filepath.Join(s.Dir, "worker.log"), 4); len(lines) != 4 || lines[3]["msg"] != "after limits" {
		t.Fatalf("after the limits: %v", lines)
	}
	for _, want := range []string{`"msg":"too many connections, closing one"`, `"msg":"closing connection"`} {
		if !strings.Contains(s.Output(), want) {
			t.Errorf("log lacks %s:\n%s", want, s.Output())
		}
	}
}

package syslog

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func openWriter(t *testing.T, w *Writer) io.WriteCloser {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := w.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	wc, err := w.OpenWriter()
	if err != nil {
		t.Fatal(err)
	}
	return wc
}

// senderOf returns the sender behind a writer opened by openWriter.
func senderOf(w io.WriteCloser) *sender {
	e := w.(*handle).entry()
	if e == nil {
		return nil
	}
	return e.s.Load()
}

// readFrames reads n octet-counted or LF-terminated frames from c.
func readFrames(t *testing.T, c net.Conn, n int, octets bool) []string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	var out []string
	for len(out) < n {
		if !octets {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("after %d frames: %v", len(out), err)
			}
			out = append(out, strings.TrimSuffix(line, "\n"))
			continue
		}
		lenStr, err := r.ReadString(' ')
		if err != nil {
			t.Fatalf("after %d frames: %v", len(out), err)
		}
		size, err := strconv.Atoi(strings.TrimSpace(lenStr))
		if err != nil {
			t.Fatalf("bad length %q", lenStr)
		}
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
		out = append(out, string(buf))
	}
	return out
}

func TestWriterTCPFraming(t *testing.T) {
	for _, framing := range []string{"octet_counting", "lf"} {
		t.Run(framing, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			w := openWriter(t, &Writer{Address: "tcp/" + l.Addr().String(), Framing: framing})
			conn, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for i := range 3 {
				fmt.Fprintf(w, "<14>1 - - - - - message %d\nwith a second line\n", i)
			}
			frames := readFrames(t, conn, 3, framing == "octet_counting")
			if framing == "octet_counting" && frames[2] != "<14>1 - - - - - message 2\nwith a second line" {
				t.Fatalf("frames %q", frames)
			}
			// With lf framing, the line break is escaped rather than
			// allowed to end the frame and start a forged message.
			if framing == "lf" && frames[1] != `<14>1 - - - - - message 1\nwith a second line` {
				t.Fatalf("frames %q", frames)
			}
			if err := senderOf(w).Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWriterUDPTruncates checks, for udp/ and udp4/ (which must be
// datagrams too, not octet-counted), that a long entry is cut to
// max_datagram and counted.
func TestWriterUDPTruncates(t *testing.T) {
	for _, network := range []string{"udp", "udp4"} {
		t.Run(network, func(t *testing.T) { testWriterUDPTruncates(t, network) })
	}
}

func testWriterUDPTruncates(t *testing.T, network string) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	addr := network + "/" + pc.LocalAddr().String()
	w := openWriter(t, &Writer{Address: addr, MaxDatagram: 600})
	defer w.Close()
	if _, err := w.Write([]byte(strings.Repeat("x", 1000) + "\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2000)
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil || n != 600 || buf[0] != 'x' {
		t.Fatalf("datagram of %d bytes starting %.8q, err %v", n, buf[:min(n, 8)], err)
	}
	m := senderOf(w).meter
	deadline := time.Now().Add(5 * time.Second)
	for m.Truncated.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m.Truncated.Load() < 1 {
		t.Fatal("truncation not counted")
	}
}

func TestWriterBoundedWhenServerDown(t *testing.T) {
	// A port nobody listens on: the sender keeps trying; writes must not
	// block longer than block_timeout, and drops are counted.
	addr := "tcp/127.0.0.1:" + strconv.Itoa(deadPort(t))
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := (&Writer{Address: addr}).Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := (Writer{Address: addr, network: "tcp", addr: addr[6:], DialTimeout: caddy.Duration(time.Second), Queue: 1, BlockTimeout: 1}).OpenWriter(); err == nil {
		t.Fatal("opened without soft_start while the server is down")
	}
	w := openWriter(t, &Writer{Address: addr, SoftStart: true, Queue: 2, BlockTimeout: caddy.Duration(20 * time.Millisecond)})
	start := time.Now()
	var dropped int
	for i := range 10 {
		if _, err := w.Write([]byte(fmt.Sprintf("m%d\n", i))); err != nil {
			dropped++
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("writes blocked for %v", took)
	}
	if dropped < 7 || senderOf(w).meter.Dropped.Load() < int64(dropped) {
		t.Fatalf("dropped %d, counted %d", dropped, senderOf(w).meter.Dropped.Load())
	}
	closed := time.Now()
	_ = senderOf(w).Close()
	if time.Since(closed) > closeTimeout+2*time.Second {
		t.Fatalf("close took %v", time.Since(closed))
	}
}

func TestWriterReconnects(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	w := openWriter(t, &Writer{Address: "tcp/" + addr})
	defer w.Close()
	conn, _ := l.Accept()
	fmt.Fprint(w, "first\n")
	if got := readFrames(t, conn, 1, true); got[0] != "first" {
		t.Fatalf("got %q", got)
	}
	// The server goes away and comes back on the same port.
	conn.Close()
	l.Close()
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("could not listen again on %s: %v", addr, err)
	}
	defer l2.Close()
	for i := range 5 {
		fmt.Fprintf(w, "again %d\n", i)
	}
	_ = l2.(*net.TCPListener).SetDeadline(time.Now().Add(15 * time.Second))
	conn2, err := l2.Accept()
	if err != nil {
		t.Fatalf("no reconnect: %v", err)
	}
	defer conn2.Close()
	got := readFrames(t, conn2, 5, true)
	if got[4] != "again 4" {
		t.Fatalf("after reconnect: %q", got)
	}
}

func deadPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestWriterConfig(t *testing.T) {
	var w Writer
	in := "syslog tcp/logs.example.com:6514 {\n framing lf\n soft_start\n queue 50\n block_timeout 1s\n dial_timeout 2s\n max_datagram 2KiB\n}"
	if err := w.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	if w.Address != "tcp/logs.example.com:6514" || w.Framing != "lf" || !w.SoftStart || w.Queue != 50 || w.BlockTimeout != caddy.Duration(time.Second) ||
		w.DialTimeout != caddy.Duration(2*time.Second) || w.MaxDatagram != 2048 {
		t.Fatalf("%+v", w)
	}
	if (Writer{Address: "a"}).WriterKey() == (Writer{Address: "a", Framing: "lf"}).WriterKey() {
		t.Fatal("writer key ignores framing")
	}
	for addr, want := range map[string]string{
		"ftp/x:1":             "network must be udp, tcp, unix or unixgram",
		"ftp://x:1":           "network must be",
		"x:1":                 "such as udp/x:1",
		"tcp/host":            "want tcp/host:port",
		"udp/host:514-515":    "want udp/host:port, one port",
		"unix/":               "want unix//path",
		"udp://h:514":         `address "udp://h:514": write it as udp/h:514`,
		"unixgram:///dev/log": "write it as unixgram//dev/log",
		"tls/h:6514":          `address "tls/h:6514": the syslog writer does not send over TLS; use ` + "`output tls h:6514 {",
		"tls://h:6514":        "use `output tls h:6514 {",
	} {
		if err := (&Writer{Address: addr}).Provision(caddy.Context{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", addr, err, want)
		}
	}
	for addr, want := range map[string][2]string{
		"udp/127.0.0.1:514":       {"udp", "127.0.0.1:514"},
		"tcp6/[::1]:6514":         {"tcp6", "[::1]:6514"},
		"tcp/logs.example.com:65": {"tcp", "logs.example.com:65"},
		"unix//run/syslog.sock":   {"unix", "/run/syslog.sock"},
		defaultAddress:            {"unixgram", "/dev/log"},
	} {
		network, dial, err := parseAddress(addr)
		if err != nil || [2]string{network, dial} != want {
			t.Errorf("%s: %q %q %v, want %q", addr, network, dial, err, want)
		}
	}
	for in, want := range map[string]string{
		"syslog udp://127.0.0.1:514": "write it as udp/127.0.0.1:514",
		"syslog tls/127.0.0.1:6514":  "use `output tls 127.0.0.1:6514 {",
		// The TLS settings the writer once took name the tls writer too.
		"syslog tcp/127.0.0.1:6514 {\n tls {\n  ca /ca.pem\n }\n}": "tls: the syslog writer does not send over TLS; use `output tls <host:port>",
	} {
		if err := new(Writer).UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(want, "output tls") && !strings.Contains(err.Error(), "with `format syslog`") {
			t.Errorf("Caddyfile %q: %v, want %q", in, err, want)
		}
	}
}

// TestWriterEndsWithItsConfig checks that unloading the last config
// using a writer sends what is queued and closes the connection (Caddy
// itself never closes log writers), and that a later write starts again.
func TestWriterEndsWithItsConfig(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	cfg := &Writer{Address: "tcp/" + l.Addr().String()}
	if err := cfg.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := cfg.OpenWriter()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 3 {
		fmt.Fprintf(w, "<14>1 - - - - - before unload %d\n", i)
	}
	cancel() // the config is unloaded
	frames := readFrames(t, conn, 3, true)
	if frames[2] != "<14>1 - - - - - before unload 2" {
		t.Fatalf("frames %q", frames)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection still open after the config was unloaded (read %d, %v)", n, err)
	}
	// A request the old config was still serving logs once more.
	fmt.Fprintf(w, "<14>1 - - - - - straggler\n")
	conn2, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	if frames := readFrames(t, conn2, 1, true); frames[0] != "<14>1 - - - - - straggler" {
		t.Fatalf("frames %q", frames)
	}
}

// TestWriterLosesNothingWhileItsConfigEnds writes from several
// goroutines while the config that uses the writer is unloaded: every
// write that returned no error must reach the server, whether it went
// to the sender being closed or to one started after it.
func TestWriterLosesNothingWhileItsConfigEnds(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	got := map[string]int{}
	var conns sync.WaitGroup
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					lenStr, err := r.ReadString(' ')
					if err != nil {
						return
					}
					n, _ := strconv.Atoi(strings.TrimSpace(lenStr))
					buf := make([]byte, n)
					if _, err := io.ReadFull(r, buf); err != nil {
						return
					}
					mu.Lock()
					got[string(buf)]++
					mu.Unlock()
				}
			})
		}
	}()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	cfg := &Writer{Address: "tcp/" + l.Addr().String(), SoftStart: true, BlockTimeout: caddy.Duration(time.Second)}
	if err := cfg.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := cfg.OpenWriter()
	if err != nil {
		t.Fatal(err)
	}
	var accepted sync.Map
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 150 {
				msg := fmt.Sprintf("g%d-%03d", g, i)
				if _, err := fmt.Fprintf(w, "%s\n", msg); err == nil {
					accepted.Store(msg, true)
				}
				if g == 0 && i == 100 {
					cancel() // the config is unloaded mid-stream
				}
			}
		})
	}
	wg.Wait()
	n := 0
	accepted.Range(func(k, _ any) bool {
		n++
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			c := got[k.(string)]
			mu.Unlock()
			if c == 1 {
				return true
			}
			if c > 1 || time.Now().After(deadline) {
				t.Errorf("%s arrived %d times, want once", k, c)
				return false
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	if n < 500 {
		t.Errorf("only %d of 600 writes accepted", n)
	}
}

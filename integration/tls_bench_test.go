package integration

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tlsSink is an in-process RFC 5425 server that counts octet-counted
// frames and can keep them, for throughput measurements.
type tlsSink struct {
	ln     net.Listener
	frames atomic.Int64
	keep   bool
	mu     sync.Mutex
	kept   [][]byte
}

func tlsStartSink(t *testing.T, p *tlsPKI, keep bool) *tlsSink {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: p.caPool, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsSink{ln: ln, keep: keep}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *tlsSink) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		lenText, err := r.ReadString(' ')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(lenText[:len(lenText)-1])
		if err != nil || n < 0 || n > 1<<20 {
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(r, msg); err != nil {
			return
		}
		if s.keep {
			s.mu.Lock()
			s.kept = append(s.kept, msg)
			s.mu.Unlock()
		}
		s.frames.Add(1)
	}
}

func (s *tlsSink) addr() string { return s.ln.Addr().String() }

// waitFrames waits (bounded) until n frames arrived; it reports the time
// the last one arrived, or false.
func (s *tlsSink) waitFrames(n int64, limit time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(limit)
	for s.frames.Load() < n {
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		time.Sleep(time.Millisecond)
	}
	return time.Now(), true
}

// TestTLSWriterThroughput measures records per second through Caddy and
// the `tls` writer (spool with fsync every, group fsync, memory only)
// into a TLS sink, and, in the same run, writing the very frames the
// writer sent straight to a TLS socket, one Write per frame. The numbers
// are logged (go test -v); the test fails only if records go missing.
func TestTLSWriterThroughput(t *testing.T) {
	p := tlsNewPKI(t)
	const n, batch = 20000, 500
	var frames [][]byte
	rates := map[string]float64{} // records/s of each path, for the ratios at the end
	for _, mode := range []struct{ name, spool, spoolOpts, extra string }{
		{"spool, fsync every", "yes", "", ""},
		{"spool, fsync 50ms", "yes", "\t\t\t\tfsync 50ms", ""},
		{"memory (buffer 100000)", "", "", "\t\t\tbuffer 100000"},
	} {
		sink := tlsStartSink(t, p, frames == nil)
		o := tlsWriterOpts{addr: sink.addr(), cert: p.ClientCert, key: p.ClientKey, spoolOpts: mode.spoolOpts, extra: mode.extra}
		if mode.spool != "" {
			o.spool = t.TempDir()
		}
		s := startCaddy(t, tlsWriterCaddyfile(p, o))
		marker := tlsMarker("bench")
		tlsPostRange(t, s.URL("/_applog"), marker, 0, 10) // warm up: connected
		if _, ok := sink.waitFrames(10, 10*time.Second); !ok {
			t.Fatalf("%s: warm-up records did not arrive", mode.name)
		}
		start := time.Now()
		for from := 10; from < n+10; from += batch {
			tlsPostRange(t, s.URL("/_applog"), marker, from, from+batch)
		}
		posted := time.Since(start)
		end, ok := sink.waitFrames(n+10, time.Minute)
		if !ok {
			t.Fatalf("%s: %d of %d records arrived", mode.name, sink.frames.Load()-10, n)
		}
		elapsed := end.Sub(start)
		rates["tls writer, "+mode.name] = float64(n) / elapsed.Seconds()
		t.Logf("tls writer, %-24s %6.0f records/s (%d records in %v; posting took %v)",
			mode.name+":", float64(n)/elapsed.Seconds(), n, elapsed.Round(time.Millisecond), posted.Round(time.Millisecond))
		if frames == nil {
			sink.mu.Lock()
			frames = sink.kept[10:]
			sink.mu.Unlock()
		}
		s.stop()
	}

	// The same frames, written straight to a TLS socket.
	for _, buffered := range []bool{false, true} {
		sink := tlsStartSink(t, p, false)
		c, err := tls.Dial("tcp", sink.addr(), p.ClientConfig(t, p.ClientCert, p.ClientKey))
		if err != nil {
			t.Fatal(err)
		}
		var w io.Writer = c
		bw := bufio.NewWriterSize(c, 64<<10)
		if buffered {
			w = bw
		}
		start := time.Now()
		for _, f := range frames {
			if _, err := fmt.Fprintf(w, "%d %s", len(f), f); err != nil {
				t.Fatal(err)
			}
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		end, ok := sink.waitFrames(int64(len(frames)), time.Minute)
		c.Close()
		if !ok {
			t.Fatalf("direct: %d of %d frames arrived", sink.frames.Load(), len(frames))
		}
		label := "one Write per frame"
		if buffered {
			label = "64KiB buffered"
		}
		elapsed := end.Sub(start)
		rates["direct, "+label] = float64(len(frames)) / elapsed.Seconds()
		t.Logf("direct TLS socket, %-24s %6.0f records/s (%d records in %v)", label+":", float64(len(frames))/elapsed.Seconds(), len(frames), elapsed.Round(time.Millisecond))
	}
	direct := rates["direct, one Write per frame"]
	for _, name := range []string{"tls writer, spool, fsync every", "tls writer, spool, fsync 50ms", "tls writer, memory (buffer 100000)"} {
		t.Logf("ratio %s / direct (one Write per frame): %.2f", name, rates[name]/direct)
	}
}

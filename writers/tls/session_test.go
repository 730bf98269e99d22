package tls

import (
	"bufio"
	"context"
	stdtls "crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/caddy-applog/caddy-applog/internal/forward"
	"github.com/caddy-applog/caddy-applog/internal/forward/forwardtest"
	"github.com/caddy-applog/caddy-applog/internal/testpki"
)

// aggregator is an RFC 5425 receiver requiring client certificates.
type aggregator struct {
	ln net.Listener
	mu sync.Mutex
	// got holds every message received, in order; conns counts
	// connections that completed a handshake.
	got   []string
	conns int
	// resetAfter, if set, makes the first connection reset (close with
	// unread data) after that many messages.
	resetAfter int
	// lf reads newline-ended messages instead of octet-counted ones.
	lf bool
	// greeting, if set, is written to each connection after the
	// handshake.
	greeting []byte
	// down makes it close each connection before the handshake.
	down bool

	// For the conformance suite: the CA its clients trust and the
	// client certificate they present.
	ca     *testpki.CA
	client stdtls.Certificate
}

func startAggregator(t testing.TB, serverCert stdtls.Certificate, clientCAs *x509.CertPool) *aggregator {
	t.Helper()
	ln, err := stdtls.Listen("tcp", "127.0.0.1:0", &stdtls.Config{
		Certificates: []stdtls.Certificate{serverCert},
		ClientAuth:   stdtls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	})
	if err != nil {
		t.Fatal(err)
	}
	a := &aggregator{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go a.serve(c.(*stdtls.Conn))
		}
	}()
	return a
}

func (a *aggregator) serve(c *stdtls.Conn) {
	defer c.Close()
	a.mu.Lock()
	down := a.down
	a.mu.Unlock()
	if down {
		return
	}
	if err := c.Handshake(); err != nil {
		return
	}
	a.mu.Lock()
	a.conns++
	resetAfter := a.resetAfter
	a.resetAfter = 0 // only this connection
	a.mu.Unlock()
	if a.greeting != nil {
		if _, err := c.Write(a.greeting); err != nil {
			return
		}
	}
	r := bufio.NewReader(c)
	for n := 0; ; n++ {
		if resetAfter > 0 && n == resetAfter {
			// Go away with data unread: the kernel answers with a reset.
			c.NetConn().(*net.TCPConn).SetLinger(0)
			return
		}
		if a.lf {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			a.mu.Lock()
			a.got = append(a.got, line[:len(line)-1])
			a.mu.Unlock()
			continue
		}
		lenStr, err := r.ReadString(' ')
		if err != nil {
			return
		}
		l, err := strconv.Atoi(lenStr[:len(lenStr)-1])
		if err != nil {
			return
		}
		msg := make([]byte, l)
		if _, err := io.ReadFull(r, msg); err != nil {
			return
		}
		a.mu.Lock()
		a.got = append(a.got, string(msg))
		a.mu.Unlock()
	}
}

func (a *aggregator) messages() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.got...)
}

func (a *aggregator) connections() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.conns
}

func (a *aggregator) addr() string { return a.ln.Addr().String() }

// The aggregator is the syslog transport's peer in the conformance
// suite.

func (a *aggregator) Transport(t testing.TB) forward.Transport {
	return testTransport(a.addr(), a.ca.Pool, a.client)
}

func (a *aggregator) Name() string       { return a.addr() }
func (a *aggregator) Received() []string { return a.messages() }

func (a *aggregator) SetDown(down bool) {
	a.mu.Lock()
	a.down = down
	a.mu.Unlock()
}

func (a *aggregator) BreakAfter(n int) {
	a.mu.Lock()
	a.resetAfter = n
	a.mu.Unlock()
}

// TestForward runs internal/forward's conformance suite through the
// syslog transport to a TLS aggregator.
func TestForward(t *testing.T) {
	forwardtest.Run(t, func(t *testing.T) forwardtest.Peer {
		ca := testpki.NewCA(t, "ca")
		agg := startAggregator(t, ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth), ca.Pool)
		agg.ca, agg.client = ca, ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)
		return agg
	})
}

func testTransport(addr string, roots *x509.CertPool, client stdtls.Certificate) *transport {
	return &transport{
		address:     addr,
		tlsConfig:   &stdtls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []stdtls.Certificate{client}, MinVersion: stdtls.VersionTLS12},
		dialTimeout: 2 * time.Second,
	}
}

// testConfig is a tls writer's forward.Config for a memory queue, or a
// spool in dir.
func testConfig(t testing.TB, tr *transport, dir string) *forward.Config {
	cfg := &forward.Config{
		Key: tr.address, Transport: tr, Name: tr.address, Buffer: 1000,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Log: zaptest.NewLogger(t),
	}
	if dir != "" {
		cfg.Spool = &forward.SpoolConfig{Dir: dir, MaxSize: 1 << 40, OnFull: "block"}
	}
	return cfg
}

func load(t testing.TB, cfg *forward.Config) (*forward.Hub, context.CancelFunc) {
	t.Helper()
	return forwardtest.Load(t, "tls", cfg)
}

func put(t testing.TB, h *forward.Hub, cfg *forward.Config, p []byte) {
	t.Helper()
	if _, err := h.Writer(cfg).Write(p); err != nil {
		t.Fatal(err)
	}
}

var (
	waitFor      = forwardtest.WaitFor
	checkAllOnce = forwardtest.CheckAllOnce
)

// deliver writes n records, each ended by end, through a spool to agg,
// and returns once the spool is empty.
func deliver(t *testing.T, ca *testpki.CA, agg *aggregator, n int, end string) *forward.Hub {
	t.Helper()
	cfg := testConfig(t, testTransport(agg.addr(), ca.Pool, ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)), t.TempDir())
	h, _ := load(t, cfg)
	for i := range n {
		put(t, h, cfg, fmt.Appendf(nil, "record %05d%s", i, end))
	}
	waitFor(t, 10*time.Second, "the spool to empty", func() bool { return h.Depth() == 0 })
	return h
}

func TestSenderDeliversInOrderAndConfirms(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	agg := startAggregator(t, ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth), ca.Pool)
	const n = 5000
	h := deliver(t, ca, agg, n, "\n")
	if dups := checkAllOnce(t, agg.messages(), n); dups != 0 {
		t.Errorf("%d duplicates on a healthy connection", dups)
	}
	meter := h.Meter()
	if meter.Entries.Load() != n || meter.SpoolDepth.Load() != 0 || meter.SpoolOldest.Load() != 0 {
		t.Errorf("meter: entries %d depth %d oldest %d", meter.Entries.Load(), meter.SpoolDepth.Load(), meter.SpoolOldest.Load())
	}
}

// sendLF sends records through a sender with lf framing to an
// aggregator that reads lines, and returns once the queue is empty.
func sendLF(t *testing.T, records [][]byte) *aggregator {
	t.Helper()
	ca := testpki.NewCA(t, "ca")
	agg := startAggregator(t, ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth), ca.Pool)
	agg.lf = true
	tr := testTransport(agg.addr(), ca.Pool, ca.Issue(t, "client", x509.ExtKeyUsageClientAuth))
	tr.lf = true
	cfg := testConfig(t, tr, "")
	h, _ := load(t, cfg)
	for _, r := range records {
		put(t, h, cfg, r)
	}
	waitFor(t, 10*time.Second, "the queue to empty", func() bool { return h.Depth() == 0 })
	return agg
}

func TestSenderLFFraming(t *testing.T) {
	const n = 200
	var records [][]byte
	for i := range n {
		records = append(records, fmt.Appendf(nil, "record %05d\n", i))
	}
	agg := sendLF(t, records)
	if dups := checkAllOnce(t, agg.messages(), n); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
}

// TestSenderLFFramingEscapes checks that a line break inside an entry
// cannot end an lf frame early and forge a message of its own.
func TestSenderLFFramingEscapes(t *testing.T) {
	const n = 20
	var records [][]byte
	for i := range n {
		records = append(records, fmt.Appendf(nil, "record %05d\n<13>1 - forged - - - - x\r\n", i))
	}
	agg := sendLF(t, records)
	waitFor(t, 10*time.Second, "every record to arrive", func() bool { return len(agg.messages()) >= n })
	msgs := agg.messages()
	if len(msgs) != n {
		t.Fatalf("%d messages arrived for %d records: a line break split a frame", len(msgs), n)
	}
	for i, m := range msgs {
		if want := fmt.Sprintf(`record %05d\n<13>1 - forged - - - - x`, i); m != want {
			t.Errorf("message %d arrived as %q, want %q", i, m, want)
		}
	}
}

// TestSenderKeepsOneConnectionWhenServerWrites checks that TLS records a
// server sends after the handshake are not taken for the server closing
// the connection (which would reconnect for every entry). OpenSSL and
// GnuTLS servers (syslog-ng, rsyslog) send TLS 1.3 session tickets only
// after the client's Finished, so they arrive while the writer is
// connected; Go's server sends them with its handshake, so this server
// sends a record of its own instead.
func TestSenderKeepsOneConnectionWhenServerWrites(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	agg := startAggregator(t, ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth), ca.Pool)
	agg.greeting = []byte("hello")
	cfg := testConfig(t, testTransport(agg.addr(), ca.Pool, ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)), "")
	h, _ := load(t, cfg)
	const n = 20
	for i := range n {
		put(t, h, cfg, fmt.Appendf(nil, "record %05d", i))
		time.Sleep(2 * time.Millisecond) // let the server's record arrive between entries
	}
	waitFor(t, 10*time.Second, "every record to arrive", func() bool { return len(agg.messages()) >= n })
	if dups := checkAllOnce(t, agg.messages(), n); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	conns := agg.connections()
	if conns != 1 {
		t.Errorf("%d connections for %d entries, want 1", conns, n)
	}
}

func TestSenderKeepsRecordsWhenCertificateRejected(t *testing.T) {
	ca, rogue := testpki.NewCA(t, "ca"), testpki.NewCA(t, "rogue")
	serverCert := ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth)
	agg := startAggregator(t, serverCert, ca.Pool)
	// TLS 1.3: the client's handshake succeeds before the server checks
	// the certificate, and the bytes sent are TCP-acknowledged anyway.
	bad := testConfig(t, testTransport(agg.addr(), ca.Pool, rogue.Issue(t, "client", x509.ExtKeyUsageClientAuth)), "")
	bad.Key = "rogue"
	h, cancelBad := load(t, bad)
	const n = 100
	for i := range n {
		put(t, h, bad, fmt.Appendf(nil, "record %05d", i))
	}
	time.Sleep(2500 * time.Millisecond)
	if h.Depth() != n {
		t.Fatalf("%d records left the queue although the server rejected the certificate", n-h.Depth())
	}
	if h.Meter().Errors.Load() == 0 {
		t.Error("no error counted for the rejected certificate")
	}
	if msg := h.LastError(); msg == "" {
		t.Error("no reason recorded")
	} else {
		t.Logf("reason: %s", msg)
	}

	// A reload with the right certificate takes over the queue.
	good := testConfig(t, testTransport(agg.addr(), ca.Pool, ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)), "")
	load(t, good)
	cancelBad()
	waitFor(t, 10*time.Second, "delivery with the right certificate", func() bool { return h.Depth() == 0 })
	checkAllOnce(t, agg.messages(), n)
}

func TestSenderResendsWhatAResetConnectionHeld(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	agg := startAggregator(t, ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth), ca.Pool)
	agg.resetAfter = 300
	const n = 2000
	deliver(t, ca, agg, n, "")
	dups := checkAllOnce(t, agg.messages(), n)
	t.Logf("%d duplicates after the reset (the unconfirmed window)", dups)
	conns := agg.connections()
	if conns < 2 {
		t.Errorf("%d connections, want a reconnect after the reset", conns)
	}
}

// BenchmarkDelivery compares records/s through a spool and sender with
// writing the same octet-counted frames straight to a TLS connection.
func BenchmarkDelivery(b *testing.B) {
	ca := testpki.NewCA(b, "ca")
	serverCert := ca.Issue(b, "localhost", x509.ExtKeyUsageServerAuth)
	client := ca.Issue(b, "client", x509.ExtKeyUsageClientAuth)
	rec := []byte(`<134>1 2026-11-21T10:00:00.000Z web-1 myapp 1234 - - {"level":"info","msg":"GET /api/items 200","duration":0.0123}`)
	b.Run("direct", func(b *testing.B) {
		agg := startAggregator(b, serverCert, ca.Pool)
		c, err := stdtls.Dial("tcp", agg.addr(), testTransport(agg.addr(), ca.Pool, client).tlsConfig)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		w := bufio.NewWriterSize(c, 256<<10)
		b.ReportAllocs()
		for b.Loop() {
			fmt.Fprintf(w, "%d %s", len(rec), rec)
		}
		w.Flush()
		waitFor(b, time.Minute, "delivery", func() bool { return len(agg.messages()) >= b.N })
	})
	for _, fsync := range []string{"every", "100ms"} {
		b.Run("spool-fsync-"+fsync, func(b *testing.B) {
			agg := startAggregator(b, serverCert, ca.Pool)
			every := time.Duration(0)
			if fsync != "every" {
				every = 100 * time.Millisecond
			}
			cfg := testConfig(b, testTransport(agg.addr(), ca.Pool, client), b.TempDir())
			cfg.Spool.FsyncEvery = every
			h, _ := load(b, cfg)
			w := h.Writer(cfg)
			b.SetParallelism(8)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := w.Write(rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			waitFor(b, time.Minute, "delivery", func() bool { return len(agg.messages()) >= b.N })
		})
	}
}

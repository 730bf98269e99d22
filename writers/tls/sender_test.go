package tls

import (
	"bufio"
	stdtls "crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/caddy-applog/caddy-applog/internal/testpki"
	"github.com/caddy-applog/caddy-applog/module/status"
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
	if err := c.Handshake(); err != nil {
		return
	}
	a.mu.Lock()
	a.conns++
	first := a.conns == 1
	a.mu.Unlock()
	if a.greeting != nil {
		if _, err := c.Write(a.greeting); err != nil {
			return
		}
	}
	r := bufio.NewReader(c)
	for n := 0; ; n++ {
		if first && a.resetAfter > 0 && n == a.resetAfter {
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

func (a *aggregator) addr() string { return a.ln.Addr().String() }

func testSettings(t testing.TB, addr string, roots *x509.CertPool, client stdtls.Certificate) *settings {
	return &settings{
		key: addr, address: addr,
		tlsConfig:   &stdtls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []stdtls.Certificate{client}, MinVersion: stdtls.VersionTLS12},
		dialTimeout: 2 * time.Second, backoffMin: 50 * time.Millisecond, backoffMax: 200 * time.Millisecond,
		log: zap.NewNop(),
	}
}

// waitFor polls cond for up to limit.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkAllOnce checks that got holds record 0..n-1, each at least once,
// in order of first appearance, and returns how many were duplicates.
func checkAllOnce(t testing.TB, got []string, n int) int {
	t.Helper()
	seen := map[string]bool{}
	next := 0
	for _, m := range got {
		if seen[m] {
			continue
		}
		seen[m] = true
		if want := fmt.Sprintf("record %05d", next); m != want {
			t.Fatalf("record %d arrived as %q, out of order or unknown", next, m)
		}
		next++
	}
	if next != n {
		t.Fatalf("%d distinct records arrived, want %d", next, n)
	}
	return len(got) - n
}

func TestSenderDeliversInOrderAndConfirms(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	agg := startAggregator(t, ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth), ca.Pool)
	dir := t.TempDir()
	meter := status.WriterMeter("tls-test", t.Name())
	q, err := openSpool(dir, 1<<30, "block", 0, meter, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	const n = 5000
	for i := range n {
		if err := q.put(fmt.Appendf(nil, "record %05d\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	s := newSender(testSettings(t, agg.addr(), ca.Pool, ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)), q, meter, nil)
	go s.run()
	defer func() { s.requestStop(); <-s.done }()
	waitFor(t, 10*time.Second, "the spool to empty", func() bool { return q.depth() == 0 })
	if dups := checkAllOnce(t, agg.messages(), n); dups != 0 {
		t.Errorf("%d duplicates on a healthy connection", dups)
	}
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
	meter := status.WriterMeter("tls-test", t.Name())
	q := newMemQueue("test", 1000, meter)
	for _, r := range records {
		q.put(r)
	}
	set := testSettings(t, agg.addr(), ca.Pool, ca.Issue(t, "client", x509.ExtKeyUsageClientAuth))
	set.lf = true
	s := newSender(set, q, meter, nil)
	go s.run()
	t.Cleanup(func() { s.requestStop(); <-s.done })
	waitFor(t, 10*time.Second, "the queue to empty", func() bool { return q.depth() == 0 })
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
	meter := status.WriterMeter("tls-test", t.Name())
	q := newMemQueue("test", 1000, meter)
	s := newSender(testSettings(t, agg.addr(), ca.Pool, ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)), q, meter, nil)
	go s.run()
	defer func() { s.requestStop(); <-s.done }()
	const n = 20
	for i := range n {
		q.put(fmt.Appendf(nil, "record %05d", i))
		time.Sleep(2 * time.Millisecond) // let the server's record arrive between entries
	}
	waitFor(t, 10*time.Second, "every record to arrive", func() bool { return len(agg.messages()) >= n })
	if dups := checkAllOnce(t, agg.messages(), n); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	agg.mu.Lock()
	conns := agg.conns
	agg.mu.Unlock()
	if conns != 1 {
		t.Errorf("%d connections for %d entries, want 1", conns, n)
	}
}

func TestSenderKeepsRecordsWhenCertificateRejected(t *testing.T) {
	ca, rogue := testpki.NewCA(t, "ca"), testpki.NewCA(t, "rogue")
	serverCert := ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth)
	agg := startAggregator(t, serverCert, ca.Pool)
	meter := status.WriterMeter("tls-test", t.Name())
	q := newMemQueue("test", 1000, meter)
	const n = 100
	for i := range n {
		q.put(fmt.Appendf(nil, "record %05d", i))
	}
	// TLS 1.3: the client's handshake succeeds before the server checks
	// the certificate, and the bytes sent are TCP-acknowledged anyway.
	bad := newSender(testSettings(t, agg.addr(), ca.Pool, rogue.Issue(t, "client", x509.ExtKeyUsageClientAuth)), q, meter, nil)
	go bad.run()
	time.Sleep(2500 * time.Millisecond)
	bad.requestStop()
	<-bad.done
	if q.depth() != n {
		t.Fatalf("%d records left the queue although the server rejected the certificate", n-q.depth())
	}
	if meter.Errors.Load() == 0 {
		t.Error("no error counted for the rejected certificate")
	}
	if msg, _ := bad.lastErr.Load().(string); msg == "" {
		t.Error("no reason recorded")
	} else {
		t.Logf("reason: %s", msg)
	}

	good := newSender(testSettings(t, agg.addr(), ca.Pool, ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)), q, meter, nil)
	go good.run()
	defer func() { good.requestStop(); <-good.done }()
	waitFor(t, 10*time.Second, "delivery with the right certificate", func() bool { return q.depth() == 0 })
	checkAllOnce(t, agg.messages(), n)
}

func TestSenderResendsWhatAResetConnectionHeld(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	agg := startAggregator(t, ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth), ca.Pool)
	agg.resetAfter = 300
	meter := status.WriterMeter("tls-test", t.Name())
	q, err := openSpool(t.TempDir(), 1<<30, "block", 0, meter, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	const n = 2000
	for i := range n {
		q.put(fmt.Appendf(nil, "record %05d", i))
	}
	s := newSender(testSettings(t, agg.addr(), ca.Pool, ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)), q, meter, nil)
	go s.run()
	defer func() { s.requestStop(); <-s.done }()
	waitFor(t, 10*time.Second, "the spool to empty", func() bool { return q.depth() == 0 })
	dups := checkAllOnce(t, agg.messages(), n)
	t.Logf("%d duplicates after the reset (the unconfirmed window)", dups)
	if agg.conns < 2 {
		t.Errorf("%d connections, want a reconnect after the reset", agg.conns)
	}
}

func TestSenderHandsOverWithoutDuplicates(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	agg := startAggregator(t, ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth), ca.Pool)
	meter := status.WriterMeter("tls-test", t.Name())
	q, err := openSpool(t.TempDir(), 1<<30, "block", 0, meter, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	client := ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)
	const n = 3000
	first := newSender(testSettings(t, agg.addr(), ca.Pool, client), q, meter, nil)
	go first.run()
	var second *sender
	for i := range n {
		q.put(fmt.Appendf(nil, "record %05d", i))
		if i == n/2 {
			second = newSender(testSettings(t, agg.addr(), ca.Pool, client), q, meter, first)
			first.requestStop()
			go second.run()
		}
		if i%100 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	defer func() { second.requestStop(); <-second.done }()
	waitFor(t, 15*time.Second, "the spool to empty", func() bool { return q.depth() == 0 })
	if dups := checkAllOnce(t, agg.messages(), n); dups != 0 {
		t.Errorf("%d duplicates across a handover", dups)
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
		c, err := stdtls.Dial("tcp", agg.addr(), testSettings(b, agg.addr(), ca.Pool, client).tlsConfig)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		w := bufio.NewWriterSize(c, batchBytes)
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
			meter := status.WriterMeter("tls-bench", b.Name())
			q, err := openSpool(b.TempDir(), 1<<40, "block", every, meter, zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			defer q.close()
			s := newSender(testSettings(b, agg.addr(), ca.Pool, client), q, meter, nil)
			go s.run()
			defer func() { s.requestStop(); <-s.done }()
			b.SetParallelism(8)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := q.put(rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			waitFor(b, time.Minute, "delivery", func() bool { return len(agg.messages()) >= b.N })
		})
	}
}

package receiver_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/receiver"
	"github.com/caddy-applog/caddy-applog/module/receiver/syslog"
)

// arrival is what the intake kept of one record.
type arrival struct{ app, host, msg string }

// sink is an intake that keeps what it is given, copying the strings
// (the read loop reuses their bytes once Submit returned).
type sink struct {
	mu   sync.Mutex
	got  []arrival
	apps map[string]bool
}

func (k *sink) Submit(_ context.Context, b *intake.Batch) (intake.Result, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, r := range b.Records {
		k.got = append(k.got, arrival{strings.Clone(r.App), strings.Clone(r.Host), strings.Clone(r.Message)})
	}
	return intake.Result{Accepted: len(b.Records)}, nil
}

func (k *sink) KnowsApp(app string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.apps[app]
}

func (k *sink) DeclareApp(app string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.apps == nil {
		k.apps = map[string]bool{}
	}
	k.apps[app] = true
}

// wait returns the arrivals once there are n of them (bounded).
func (k *sink) wait(t *testing.T, n int) []arrival {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		k.mu.Lock()
		got := append([]arrival(nil), k.got...)
		k.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("%d records arrived, want %d: %q", len(got), n, got)
			}
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lines is a Protocol of LF-terminated messages; Decode keeps the message
// as the record's text under app "test".
type lines struct{}

func (lines) Split(maxSize int) bufio.SplitFunc {
	return func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			if i > maxSize {
				return 0, nil, fmt.Errorf("message of %d bytes over %d", i, maxSize)
			}
			return i + 1, data[:i], nil
		}
		if len(data) > maxSize {
			return 0, nil, fmt.Errorf("message over %d bytes", maxSize)
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	}
}

func (lines) Datagram(p []byte, _ int) ([]byte, error) { return p, nil }

func (lines) Decode(msg []byte, now time.Time, attrs []intake.Attr) (intake.Record, error) {
	return intake.Record{Time: now, App: "test", Message: string(msg), Attrs: attrs}, nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newContext is a Caddy context for provisioning, cancelled when t ends.
func newContext(t *testing.T) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

// serve provisions s with the lines protocol on a free loopback TCP
// port, starts it on a new sink, and stops it when t ends (Stop is safe
// to call again). It returns the address.
func serve(t *testing.T, s *receiver.Server) (string, *sink) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.Listen = []string{"tcp/" + addr}
	if err := s.Provision(newContext(t), "test-"+t.Name(), lines{}); err != nil {
		t.Fatal(err)
	}
	k := new(sink)
	if err := s.Start(k); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return addr, k
}

// dial connects to addr from local (an address of 127.0.0.0/8, or "").
func dial(t *testing.T, addr, local string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closes c within limit:
// a read returns EOF (or a reset) rather than timing out.
func closedByServer(c net.Conn, limit time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(limit))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// send writes msg and waits until the intake holds n records, so that a
// connection is known to be served (accepted and counted) before the
// next one is made.
func send(t *testing.T, c net.Conn, k *sink, msg string, n int) {
	t.Helper()
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatal(err)
	}
	k.wait(t, n)
}

// TestServerFraming sends syslog messages in each stream framing to the
// syslog receiver (framing auto: decided per connection from its first
// message), and one datagram: each message arrives whole, once, with its
// peer as host; an octet-counted one keeps the LF inside it.
func TestServerFraming(t *testing.T) {
	tcp, udp := freePort(t), freePort(t)
	r := &syslog.Syslog{Server: receiver.Server{Listen: []string{fmt.Sprintf("tcp/127.0.0.1:%d", tcp), fmt.Sprintf("udp/127.0.0.1:%d", udp)}}}
	if err := r.Provision(newContext(t)); err != nil {
		t.Fatal(err)
	}
	k := new(sink)
	if err := r.Start(k); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	msg := func(app, text string) string { return "<134>1 2026-12-04T10:00:00Z host " + app + " - - - " + text }
	octet := func(m string) string { return fmt.Sprintf("%d %s", len(m), m) }
	streams := []struct{ name, wire string }{
		{"octet", octet(msg("octet", "one\nstill one")) + octet(msg("octet", "two"))},
		{"lf", msg("lf", "one") + "\n" + msg("lf", "two") + "\n"},
		{"nul", msg("nul", "one") + "\x00" + msg("nul", "two") + "\x00"},
	}
	for _, s := range streams {
		c := dial(t, fmt.Sprintf("127.0.0.1:%d", tcp), "")
		if _, err := io.WriteString(c, s.wire); err != nil {
			t.Fatal(err)
		}
	}
	u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udp))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := io.WriteString(u, msg("udp", "one")); err != nil {
		t.Fatal(err)
	}
	got := map[arrival]int{}
	for _, a := range k.wait(t, 7) {
		got[a]++
	}
	for _, want := range []arrival{
		{"octet", "127.0.0.1", "one\nstill one"}, {"octet", "127.0.0.1", "two"},
		{"lf", "127.0.0.1", "one"}, {"lf", "127.0.0.1", "two"},
		{"nul", "127.0.0.1", "one"}, {"nul", "127.0.0.1", "two"},
		{"udp", "127.0.0.1", "one"},
	} {
		if got[want] != 1 {
			t.Errorf("%+v arrived %d times; all: %v", want, got[want], got)
		}
	}
}

// TestServerMaxConnections: a connection over max_connections is closed
// at once, the others are served, and one ending makes room.
func TestServerMaxConnections(t *testing.T) {
	addr, k := serve(t, &receiver.Server{MaxConnections: 2})
	a, b := dial(t, addr, ""), dial(t, addr, "")
	send(t, a, k, "a", 1)
	send(t, b, k, "b", 2)
	if c := dial(t, addr, ""); !closedByServer(c, 5*time.Second) {
		t.Fatal("a third connection was kept open")
	}
	a.Close()
	// The slot frees once the server has seen a's end: retry, bounded.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dial(t, addr, "")
		if !closedByServer(c, 200*time.Millisecond) {
			send(t, c, k, "c", 3)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no room after a connection ended")
		}
	}
	send(t, b, k, "b again", 4)
}

// TestServerMaxConnectionsPerPeer: one peer's connections over
// max_connections_per_peer are closed, while another peer (another
// loopback address) still gets in.
func TestServerMaxConnectionsPerPeer(t *testing.T) {
	addr, k := serve(t, &receiver.Server{MaxConnections: 10, MaxConnectionsPerPeer: 2})
	send(t, dial(t, addr, "127.0.0.1"), k, "1", 1)
	send(t, dial(t, addr, "127.0.0.1"), k, "2", 2)
	if c := dial(t, addr, "127.0.0.1"); !closedByServer(c, 5*time.Second) {
		t.Fatal("a third connection from one peer was kept open")
	}
	other := dial(t, addr, "127.0.0.2")
	send(t, other, k, "other", 3)
	if got := k.wait(t, 3)[2]; got.host != "127.0.0.2" {
		t.Errorf("host %q, want 127.0.0.2", got.host)
	}
}

// TestServerIdleTimeout: a silent connection is closed after
// idle_timeout, and one that stops halfway through a message after
// read_timeout; a connection that keeps sending stays open.
func TestServerIdleTimeout(t *testing.T) {
	addr, k := serve(t, &receiver.Server{IdleTimeout: caddy.Duration(300 * time.Millisecond), ReadTimeout: caddy.Duration(300 * time.Millisecond)})
	busy := dial(t, addr, "")
	silent := dial(t, addr, "")
	partial := dial(t, addr, "")
	if _, err := io.WriteString(partial, "half a mess"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for i := range 8 {
		send(t, busy, k, fmt.Sprint("busy ", i), i+1)
		time.Sleep(100 * time.Millisecond)
	}
	for name, c := range map[string]net.Conn{"silent": silent, "partial": partial} {
		if !closedByServer(c, 5*time.Second) {
			t.Errorf("the %s connection was not closed", name)
		}
	}
	if waited := time.Since(began); waited < 300*time.Millisecond {
		t.Errorf("closed after %s, before the timeout", waited)
	}
	send(t, busy, k, "busy still", 9)
}

// TestServerProxyHeader: a trusted peer's PROXY header (v1 with CRLF or
// LF alone, and v2) makes its client the record's host and the key of
// max_connections_per_peer; an untrusted peer stays the host.
func TestServerProxyHeader(t *testing.T) {
	addr, k := serve(t, &receiver.Server{
		MaxConnectionsPerPeer: 1,
		ProxyProtocol:         &receiver.ProxyProtocol{Allow: []string{"127.0.0.1/32"}},
	})
	v2 := func(src net.IP) string {
		var b bytes.Buffer
		b.WriteString("\r\n\r\n\x00\r\nQUIT\n")
		b.Write([]byte{0x21, 0x11, 0, 12}) // v2 PROXY, TCP over IPv4, 12 address bytes
		b.Write(src.To4())
		b.Write(net.IPv4(127, 0, 0, 1).To4())
		b.Write([]byte{0x30, 0x39, 0x02, 0x02}) // ports 12345, 514
		return b.String()
	}
	headers := []struct{ header, client string }{
		{"PROXY TCP4 192.0.2.1 127.0.0.1 5555 514\r\n", "192.0.2.1"},
		{"PROXY TCP4 192.0.2.2 127.0.0.1 5555 514\n", "192.0.2.2"},
		{v2(net.IPv4(192, 0, 2, 3)), "192.0.2.3"},
	}
	for i, h := range headers {
		c := dial(t, addr, "127.0.0.1")
		send(t, c, k, h.header+"via proxy", i+1)
	}
	// The per-peer limit counts the client behind the proxy, not the
	// proxy: a second connection for 192.0.2.1 is refused.
	if c := dial(t, addr, "127.0.0.1"); true {
		if _, err := io.WriteString(c, headers[0].header); err != nil {
			t.Fatal(err)
		}
		if !closedByServer(c, 5*time.Second) {
			t.Error("a second connection for one client behind the proxy was kept open")
		}
	}
	// Not trusted: the header is not used, the peer is the host.
	untrusted := dial(t, addr, "127.0.0.2")
	send(t, untrusted, k, "plain", len(headers)+1)
	got := k.wait(t, len(headers)+1)
	for i, h := range headers {
		if got[i] != (arrival{"test", h.client, "via proxy"}) {
			t.Errorf("through the proxy %d: %+v, want host %s", i, got[i], h.client)
		}
	}
	if last := got[len(headers)]; last.host != "127.0.0.2" || last.msg != "plain" {
		t.Errorf("untrusted peer: %+v", last)
	}
}

// TestServerStopReleasesConnections: once the last config using an
// address stops, its open connections are closed, nothing more is
// submitted, and the address no longer accepts.
func TestServerStopReleasesConnections(t *testing.T) {
	s := &receiver.Server{}
	addr, k := serve(t, s)
	conns := make([]net.Conn, 5)
	for i := range conns {
		conns[i] = dial(t, addr, "")
		send(t, conns[i], k, fmt.Sprint("before ", i), i+1)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		if !closedByServer(c, 5*time.Second) {
			t.Errorf("connection %d still open after Stop", i)
		}
		_, _ = io.WriteString(c, "after\n")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("the address still accepts after Stop")
	}
	time.Sleep(100 * time.Millisecond)
	k.wait(t, len(conns)) // and no more
}

package integration

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// receiverAttacks are the attacks on the network receivers' connections.
var receiverAttacks = []attack{
	{
		Name:    "one_peer_takes_every_connection",
		Outcome: "the peer holds max_connections_per_peer (128 by default) connections, another peer still connects and is served, and the refusals leave a handful of log lines (5, then one a second), not one each",
		Run:     attackOnePeerFloods,
	},
	{
		Name:    "connections_through_a_trusted_proxy",
		Outcome: "a proxy_protocol peer's connections count against the clients their headers name, so a load balancer's clients do not share one limit, while a client cannot escape its own limit through the proxy nor by sending a header itself",
		Run:     attackThroughProxy,
	},
	{
		Name:    "tls_client_trickles_its_handshake",
		Outcome: "the connection is cut at read_timeout, not held for the idle timeout, and a client that completes its handshake is served",
		Run:     attackSlowHandshake,
	},
	{
		Name:    "unix_client_bound_at_an_ip_path",
		Outcome: "on unix and unixgram sockets a client whose socket path is 10.66.66.66 gets the host of its user (unix-uid-<uid>), not that path, in records and per_host files",
		Run:     attackUnixPathHost,
	},
	{
		Name:    "many_connections_announce_max_frames_and_trickle",
		Outcome: "the heap grows by what arrived, not by what the frames announce (1000 such connections cost < 24MiB), each is cut at read_timeout, and another client is served meanwhile",
		Run:     attackTricklingFrames,
	},
}

// dialFrom connects to addr from the loopback address ip.
//
// From 127.0.0.1 it does not bind first: a bind to port 0 takes its port
// from the half of the ephemeral range that freePort's binds use too, and
// the thousands of connections these attacks open would leave those in
// TIME_WAIT, so that freePort would hand out one port twice (and Caddy,
// with SO_REUSEPORT, would share it between two of its servers).
func dialFrom(ip, addr string) (net.Conn, error) { return dialNetFrom("tcp", ip, addr) }

// dialNetFrom is dialFrom over network, "tcp" or "udp".
func dialNetFrom(network, ip, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	switch {
	case ip == "127.0.0.1":
	case network == "udp":
		d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(ip)}
	default:
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	return d.Dial(network, addr)
}

// closedByServer reports whether the server closed c within wait.
func closedByServer(c net.Conn, wait time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// attackOnePeerFloods opens connections from 127.0.0.1 until they are
// refused, with the default limits, and keeps trying for a while; then
// 127.0.0.2 sends a record.
func attackOnePeerFloods(t *testing.T) {
	port := freePort(t)
	s := startCaddy(t, workerCaddyfile(fmt.Sprintf("tcp/127.0.0.1:%d", port), ""))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	frames := pyFrames(t, s.Dir, "from the other peer")

	// Open in bursts until the server closes new ones at once.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	refusedAt := -1
	for burst := 0; burst < 12 && refusedAt < 0; burst++ {
		var conns []net.Conn
		for range 100 {
			c, err := dialFrom("127.0.0.1", addr)
			if err != nil {
				t.Fatalf("after %d connections: %v", len(held)+len(conns), err)
			}
			conns = append(conns, c)
		}
		time.Sleep(200 * time.Millisecond) // let the server count them
		for _, c := range conns {
			if closedByServer(c, 20*time.Millisecond) {
				c.Close()
				if refusedAt < 0 {
					refusedAt = len(held)
				}
				continue
			}
			held = append(held, c)
		}
	}
	t.Logf("one peer holds %d connections; the next are closed at once", len(held))
	if refusedAt < 0 || len(held) != 128 {
		t.Fatalf("one peer holds %d connections (refused from %d on), want max_connections_per_peer's default, 128", len(held), refusedAt)
	}

	// Keep knocking, 500 times over at least two seconds: each attempt is
	// refused, and logged in a burst of 5, then at most once a second.
	attempts := 0
	for start := time.Now(); attempts < 500 || time.Since(start) < 2*time.Second; attempts++ {
		if attempts >= 500 {
			time.Sleep(10 * time.Millisecond)
		}
		c, err := dialFrom("127.0.0.1", addr)
		if err != nil {
			t.Fatalf("reconnecting: %v", err)
		}
		c.Close()
	}

	// Another peer is served.
	c, err := dialFrom("127.0.0.2", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(frames[0]); err != nil {
		t.Fatal(err)
	}
	lines := waitLines(t, filepath.Join(s.Dir, "worker.log"), 1)
	if len(lines) != 1 || lines[0]["msg"] != "from the other peer" || lines[0]["host"] != "127.0.0.2" {
		t.Fatalf("the other peer's record: %v", lines)
	}

	time.Sleep(1100 * time.Millisecond) // a throttled line is written when the next refusal comes
	warnings := strings.Count(s.Output(), "too many connections")
	t.Logf("%d refusal warnings for %d refused connections", warnings, attempts+1)
	// A burst of 5, then one a second per peer.
	if warnings == 0 || warnings > 10 {
		t.Fatalf("%d refusal warnings for %d refused connections in 2s, want 1 to 10", warnings, attempts+1)
	}
	if !strings.Contains(s.Output(), `"similar_suppressed":`) {
		t.Fatalf("refusal warnings do not count the ones left out:\n%s", s.Output())
	}
}

const unixCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		python_socket unix/{{.Dir}}/stream.sock unixgram/{{.Dir}}/dgram.sock {
			app worker
		}
	}
	log worker {
		include applog.worker
		output rotate {{.Dir}}/logs/worker.log {
			per_host
		}
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	respond "ok"
}
`

// unixClient sends one record over each Unix socket from a client socket
// bound at the relative path 10.66.66.66 (in a folder of its own for
// each), as a local process may.
const unixClient = `
import logging, logging.handlers, os, socket, sys
dir = sys.argv[1]
h = logging.handlers.SocketHandler("127.0.0.1", 1)
def frame(msg):
    return h.makePickle(logging.LogRecord("edge", logging.INFO, "x.py", 1, msg, None, None))
for kind, sock, name in ((socket.SOCK_STREAM, "stream.sock", "s"), (socket.SOCK_DGRAM, "dgram.sock", "d")):
    os.makedirs(os.path.join(dir, name), exist_ok=True)
    os.chdir(os.path.join(dir, name))
    s = socket.socket(socket.AF_UNIX, kind)
    s.bind("10.66.66.66")
    s.connect(os.path.join(dir, sock))
    s.sendall(frame("over " + sock)) if kind == socket.SOCK_STREAM else s.send(frame("over " + sock))
    if kind == socket.SOCK_DGRAM:
        # Datagrams carrying a file descriptor each: none may stay open in Caddy.
        for i in range(100):
            s.sendmsg([frame("with a descriptor")], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(memoryview(__import__("array").array("i", [s.fileno()]))))])
    s.close()
print(os.getuid())
`

func attackUnixPathHost(t *testing.T) {
	s := startCaddy(t, unixCaddyfile)
	fdDir := fmt.Sprintf("/proc/%d/fd", s.d.Pid())
	fds0, _ := os.ReadDir(fdDir)
	out, _ := runPython(t, s.Dir, unixClient, s.Dir)
	uid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("client output %q: %v", out, err)
	}
	host := fmt.Sprintf("unix-uid-%d", uid)
	if uid != os.Getuid() {
		t.Logf("python runs as uid %d, the test as %d", uid, os.Getuid())
	}
	logs := filepath.Join(s.Dir, "logs")
	lines := waitLines(t, filepath.Join(logs, host+"-worker.log"), 102)
	got := map[string]string{}
	for _, l := range lines {
		got[fmt.Sprint(l["msg"])] = fmt.Sprint(l["host"])
	}
	for _, msg := range []string{"over stream.sock", "over dgram.sock"} {
		if got[msg] != host {
			t.Errorf("%q: host %q, want %q (all: %v)", msg, got[msg], host, got)
		}
	}
	if len(lines) != 102 {
		t.Errorf("%d records, want 102", len(lines))
	}
	fds1, _ := os.ReadDir(fdDir)
	t.Logf("Caddy's open files: %d before, %d after 100 datagrams carrying a descriptor", len(fds0), len(fds1))
	if len(fds1) > len(fds0)+5 {
		t.Errorf("Caddy's open files grew from %d to %d: descriptors sent with datagrams were kept", len(fds0), len(fds1))
	}
	files, _ := os.ReadDir(logs)
	for _, f := range files {
		if strings.Contains(f.Name(), "10.66.66.66") {
			t.Errorf("a per_host file is named after the client's socket path: %s", f.Name())
		}
	}
}

// attackTricklingFrames opens 1000 connections that each announce a
// frame of max_message_size (16MiB) and send a byte of it every 500ms.
func attackTricklingFrames(t *testing.T) {
	const n = 1000
	port := freePort(t)
	s := startCaddy(t, workerCaddyfile(fmt.Sprintf("tcp/127.0.0.1:%d", port), `
			max_message_size 16MiB
			max_connections 1100
			max_connections_per_peer 1100
			read_timeout 3s`))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	frames := pyFrames(t, s.Dir, "served meanwhile")
	time.Sleep(500 * time.Millisecond)
	heap0, rss0 := caddyMemory(t, s)

	header := binary.BigEndian.AppendUint32(nil, 16<<20)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	for range n {
		c, err := dialFrom("127.0.0.1", addr)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
		if _, err := c.Write(append(header, 0x80)); err != nil {
			t.Fatal(err)
		}
	}
	// Trickle: a byte every 500ms on each until the server cuts it.
	defer every(500*time.Millisecond, func() {
		for _, c := range conns {
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
			_, _ = c.Write([]byte{0})
		}
	})()

	// Another client is served while they trickle.
	good, err := dialFrom("127.0.0.2", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	sent := time.Now()
	if _, err := good.Write(frames[0]); err != nil {
		t.Fatal(err)
	}
	lines := waitLines(t, filepath.Join(s.Dir, "worker.log"), 1)
	if len(lines) != 1 || lines[0]["msg"] != "served meanwhile" {
		t.Fatalf("the other client's record: %v", lines)
	}
	t.Logf("the other client's record was written %v after it was sent", time.Since(sent).Round(time.Millisecond))

	time.Sleep(time.Until(start.Add(2 * time.Second)))
	heap1, rss1 := caddyMemory(t, s)
	t.Logf("%d trickling connections: heap %d → %d MiB (+%.1f MiB), RSS %d → %d MiB (+%.1f MiB)",
		n, heap0>>20, heap1>>20, float64(heap1-heap0)/(1<<20), rss0>>20, rss1>>20, float64(rss1-rss0)/(1<<20))
	if grew := heap1 - heap0; grew > 24<<20 {
		t.Errorf("%d connections that sent 2 bytes of their frames each grew the heap by %d MiB, want < 24 MiB", n, grew>>20)
	}

	// read_timeout is 3s from a message's first byte: all are cut by then.
	deadline := start.Add(10 * time.Second)
	open := 0
	for _, c := range conns {
		if !closedByServer(c, time.Until(deadline)) {
			open++
		}
	}
	t.Logf("all cut %v after the first connected", time.Since(start).Round(100*time.Millisecond))
	if open > 0 {
		t.Fatalf("%d of %d trickling connections still open 10s after they started; read_timeout is 3s", open, n)
	}
	// The good client's connection is idle, not cut.
	if closedByServer(good, 100*time.Millisecond) {
		t.Fatal("the idle well-behaved connection was closed too")
	}
}

// attackThroughProxy opens connections from the trusted proxy
// (127.0.0.1) for several clients and for one, and from an untrusted
// peer (127.0.0.2) with headers of its own, with max_connections_per_peer 2.
func attackThroughProxy(t *testing.T) {
	port := freePort(t)
	s := startCaddy(t, workerCaddyfile(fmt.Sprintf("tcp/127.0.0.1:%d", port), `
			proxy_protocol {
				allow 127.0.0.1/32
			}
			max_connections_per_peer 2`))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var all []net.Conn
	defer func() {
		for _, c := range all {
			c.Close()
		}
	}()
	open := func(from, client string) net.Conn {
		t.Helper()
		c, err := dialFrom(from, addr)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, c)
		if _, err := fmt.Fprintf(c, "PROXY TCP4 %s 127.0.0.1 40000 9020\r\n", client); err != nil {
			t.Fatal(err)
		}
		return c
	}
	countClosed := func(conns []net.Conn) int {
		time.Sleep(300 * time.Millisecond)
		n := 0
		for _, c := range conns {
			if closedByServer(c, 50*time.Millisecond) {
				n++
			}
		}
		return n
	}
	// Four clients behind the proxy, one connection each: all served,
	// though the proxy holds four connections.
	var many []net.Conn
	for _, client := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"} {
		many = append(many, open("127.0.0.1", client))
	}
	if n := countClosed(many); n != 0 {
		t.Fatalf("%d of 4 clients behind the proxy refused, want none", n)
	}
	// One client, three connections through the proxy: the third is refused.
	var one []net.Conn
	for range 3 {
		one = append(one, open("127.0.0.1", "203.0.113.9"))
	}
	if n := countClosed(one); n != 1 {
		t.Fatalf("%d of 3 connections of one client behind the proxy refused, want 1", n)
	}
	// An untrusted peer's headers are not read: its connections count
	// against its own address, whatever they name.
	var forged []net.Conn
	for _, client := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		forged = append(forged, open("127.0.0.2", client))
	}
	if n := countClosed(forged); n != 1 {
		t.Fatalf("%d of 3 connections of an untrusted peer with forged headers refused, want 1", n)
	}
	if out := s.Output(); !strings.Contains(out, `"peer":"203.0.113.9"`) || !strings.Contains(out, "too many connections from one peer") {
		t.Fatalf("no refusal naming the client behind the proxy:\n%s", out)
	}
}

// attackSlowHandshake sends a TLS ClientHello a byte every 300ms.
func attackSlowHandshake(t *testing.T) {
	p := tlsNewPKI(t)
	port := freePort(t)
	s := startCaddy(t, workerCaddyfile(fmt.Sprintf("tls/127.0.0.1:%d", port), fmt.Sprintf(`
			tls {
				certificate %s %s
			}
			read_timeout 2s`, p.ServerCert, p.ServerKey)))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	frames := pyFrames(t, s.Dir, "after a handshake")

	// A real ClientHello, captured from Go's client.
	hello := make(chan []byte, 1)
	go func() {
		a, b := net.Pipe()
		defer a.Close()
		go func() { _ = tls.Client(b, &tls.Config{ServerName: "localhost"}).Handshake() }()
		buf := make([]byte, 4096)
		_ = a.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := a.Read(buf)
		hello <- buf[:n]
		b.Close()
	}()
	h := <-hello
	if len(h) < 50 {
		t.Fatalf("captured a ClientHello of %d bytes", len(h))
	}
	slow, err := dialFrom("127.0.0.1", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	start := time.Now()
	cut := make(chan time.Duration, 1)
	go func() {
		_ = slow.SetReadDeadline(start.Add(15 * time.Second))
		_, _ = io.Copy(io.Discard, slow)
		cut <- time.Since(start)
	}()
	go func() {
		for _, b := range h {
			if _, err := slow.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(300 * time.Millisecond)
		}
	}()

	// Meanwhile a client that completes its handshake is served.
	good, err := tls.Dial("tcp", addr, p.ClientConfig(t, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	if _, err := good.Write(frames[0]); err != nil {
		t.Fatal(err)
	}
	if lines := waitLines(t, filepath.Join(s.Dir, "worker.log"), 1); len(lines) != 1 || lines[0]["msg"] != "after a handshake" {
		t.Fatalf("the other client's record: %v", lines)
	}

	took := <-cut
	t.Logf("a handshake sent a byte every 300ms was cut after %v (read_timeout 2s)", took.Round(100*time.Millisecond))
	if took > 6*time.Second {
		t.Fatalf("a trickled handshake held the connection %v; read_timeout is 2s", took)
	}
}

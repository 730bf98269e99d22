package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listenersTimeout bounds how long a start or a reload waits for the
// config to run and for every listener it names to be up.
const listenersTimeout = 10 * time.Second

// waitListeners waits (bounded) until Caddy runs the config it is
// loading, or last loaded, and every listener that config names is up,
// and fails t naming each one that is not. The admin endpoint and a
// site answer before Caddy has started every app (the applog app may
// start its receivers after the http app serves), and a datagram sent
// to a receiver not yet bound is refused or lost.
//
// Reading the config is the wait for the load: Caddy holds its config
// lock while it loads a config and starts its apps, and GET /config/
// takes that lock, so it answers once the load is over, with the config
// that runs. Each listener that config names is then looked up among
// the kernel's sockets rather than connected to, which a receiver would
// count and log as a peer.
func (s *server) waitListeners(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(listenersTimeout)
	addrs, err := s.configListeners(listenersTimeout)
	if err != nil {
		t.Fatalf("waiting for Caddy to run its config: %v", err)
	}
	var want []socketWant
	for _, a := range addrs {
		w, err := parseListen(a)
		if err != nil {
			t.Fatalf("listener %q of the config: %v", a, err)
		}
		want = append(want, w...)
	}
	if _, err := os.Stat("/proc/net/unix"); err != nil {
		return // no /proc/net (not Linux): the config runs, which must do
	}
	for {
		var missing []string
		for _, w := range want {
			if !w.up(s.Dir) {
				missing = append(missing, w.String())
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Caddy runs its config, but within %s nothing listened on %s", listenersTimeout, strings.Join(missing, ", "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// configListeners reads the running config from the admin endpoint
// (waiting, up to limit, for a load under way) and returns the listen
// addresses of its applog receivers and http servers.
func (s *server) configListeners(limit time.Duration) ([]string, error) {
	// Its own connection, not kept: every load replaces the admin
	// server, which closes the connections of the one before, and a
	// request that picks such a connection from the shared pool as it
	// closes fails.
	c := &http.Client{Timeout: limit, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/config/", s.AdminPort))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET /config/: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /config/: %s: %.300s", resp.Status, body)
	}
	var cfg struct {
		Apps struct {
			Applog struct {
				Receivers []struct {
					Listen []string `json:"listen"`
				} `json:"receivers"`
			} `json:"applog"`
			HTTP struct {
				Servers map[string]struct {
					Listen []string `json:"listen"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		return nil, fmt.Errorf("GET /config/: %w: %.300s", err, body)
	}
	var addrs []string
	for _, r := range cfg.Apps.Applog.Receivers {
		addrs = append(addrs, r.Listen...)
	}
	for _, srv := range cfg.Apps.HTTP.Servers {
		addrs = append(addrs, srv.Listen...)
	}
	return addrs, nil
}

// socketWant is one socket a listen address asks for: a TCP port
// listening, a UDP port bound, or a Unix socket bound at a path.
type socketWant struct {
	addr  string // the listen address, as the config has it
	proto string // tcp, udp or unix
	port  int
	path  string
}

func (w socketWant) String() string {
	if w.proto == "unix" {
		return fmt.Sprintf("%s (Unix socket %s)", w.addr, w.path)
	}
	return fmt.Sprintf("%s (%s port %d)", w.addr, strings.ToUpper(w.proto), w.port)
}

// parseListen reads a receiver's listen address (udp/, tcp/, tls/,
// unix/, unixgram/ and an address) or an http server's (Caddy's network
// address syntax, tcp when it names no network); a port range asks for
// each of its ports. File descriptors handed over by a parent cannot
// be looked up and ask for nothing.
func parseListen(addr string) ([]socketWant, error) {
	network, rest, ok := strings.Cut(addr, "/")
	if !ok {
		network, rest = "tcp", addr
	}
	var proto string
	switch network {
	case "tcp", "tcp4", "tcp6", "tls":
		proto = "tcp"
	case "udp", "udp4", "udp6":
		proto = "udp"
	case "unix", "unixgram", "unixpacket":
		// Caddy allows a file mode after a bar: unix//run/x.sock|0220.
		path, _, _ := strings.Cut(rest, "|")
		return []socketWant{{addr: addr, proto: "unix", path: path}}, nil
	case "fd", "fdgram":
		return nil, nil
	default:
		return nil, fmt.Errorf("unknown network %q", network)
	}
	_, ports, err := net.SplitHostPort(rest)
	if err != nil {
		return nil, err
	}
	first, last, isRange := strings.Cut(ports, "-")
	if !isRange {
		last = first
	}
	lo, err1 := strconv.Atoi(first)
	hi, err2 := strconv.Atoi(last)
	if err1 != nil || err2 != nil || lo < 1 || hi < lo || hi > 65535 {
		return nil, fmt.Errorf("bad port %q", ports)
	}
	var out []socketWant
	for port := lo; port <= hi; port++ {
		out = append(out, socketWant{addr: addr, proto: proto, port: port})
	}
	return out, nil
}

// up reports whether the kernel has the socket: a TCP socket listening
// on the port, a UDP socket bound to it (any address: the tests' ports
// are each handed out once, see uniquePort), or a Unix socket at the
// path, relative paths being relative to Caddy's folder dir.
func (w socketWant) up(dir string) bool {
	switch w.proto {
	case "unix":
		abs := w.path
		if !filepath.IsAbs(abs) && !strings.HasPrefix(abs, "@") {
			abs = filepath.Join(dir, abs)
		}
		for _, f := range procNetLines("/proc/net/unix") {
			// Num RefCount Protocol Flags Type St Inode Path
			if len(f) >= 8 && (f[7] == w.path || f[7] == abs) {
				return true
			}
		}
		return false
	default:
		for _, file := range []string{"/proc/net/" + w.proto, "/proc/net/" + w.proto + "6"} {
			for _, f := range procNetLines(file) {
				// sl local_address rem_address st ...; 0A is LISTEN.
				if len(f) < 4 || (w.proto == "tcp" && f[3] != "0A") {
					continue
				}
				i := strings.LastIndexByte(f[1], ':')
				if p, err := strconv.ParseUint(f[1][i+1:], 16, 16); i > 0 && err == nil && int(p) == w.port {
					return true
				}
			}
		}
		return false
	}
}

// procNetLines returns the fields of each line of a /proc/net table
// after its header; none if it cannot be read (no IPv6, say).
func procNetLines(path string) [][]string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	lines := strings.Split(string(data), "\n")
	out := make([][]string, 0, len(lines))
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// TestListenersLookup checks the harness's own lookup against sockets
// of this process: each listen form is found while its socket is open,
// and not once it is closed.
func TestListenersLookup(t *testing.T) {
	if _, err := os.Stat("/proc/net/unix"); err != nil {
		t.Skip("no /proc/net: waitListeners only waits for the config to run")
	}
	dir := t.TempDir()
	tcpL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpC, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unixL, err := net.Listen("unix", filepath.Join(dir, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	gram, err := net.ListenPacket("unixgram", filepath.Join(dir, "d.sock"))
	if err != nil {
		t.Fatal(err)
	}
	tcpPort, udpPort := tcpL.Addr().(*net.TCPAddr).Port, udpC.LocalAddr().(*net.UDPAddr).Port
	addrs := []string{
		fmt.Sprintf("tcp/127.0.0.1:%d", tcpPort),
		fmt.Sprintf("tls/127.0.0.1:%d", tcpPort),
		fmt.Sprintf("127.0.0.1:%d", tcpPort), // an http server's
		fmt.Sprintf("udp/127.0.0.1:%d", udpPort),
		"unix/" + filepath.Join(dir, "s.sock") + "|0600",
		"unixgram/d.sock", // relative to Caddy's folder
	}
	check := func(wantUp bool) {
		t.Helper()
		for _, a := range addrs {
			ws, err := parseListen(a)
			if err != nil || len(ws) != 1 {
				t.Fatalf("parseListen(%q) = %v, %v", a, ws, err)
			}
			if got := ws[0].up(dir); got != wantUp {
				t.Errorf("%s: up %v, want %v", ws[0], got, wantUp)
			}
		}
	}
	check(true)
	// A UDP port that only a connected client uses, and a TCP port
	// that only a connection uses, are not listeners.
	c, err := net.Dial("tcp", tcpL.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, l := range []io.Closer{tcpL, udpC, unixL, gram} {
		l.Close()
	}
	check(false)
	if local := c.LocalAddr().(*net.TCPAddr).Port; func() bool {
		ws, _ := parseListen(fmt.Sprintf("tcp/127.0.0.1:%d", local))
		return ws[0].up(dir)
	}() {
		t.Errorf("a connection's local port %d counts as a listener", local)
	}
	if ws, err := parseListen("udp/127.0.0.1:7000-7002"); err != nil || len(ws) != 3 || ws[2].port != 7002 {
		t.Errorf("a port range: %v, %v", ws, err)
	}
	for _, bad := range []string{"sctp/127.0.0.1:1", "udp/127.0.0.1", "tcp/127.0.0.1:9-8"} {
		if _, err := parseListen(bad); err == nil {
			t.Errorf("parseListen(%q) took it", bad)
		}
	}
}

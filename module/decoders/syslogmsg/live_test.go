package syslogmsg

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/testtool"
)

// These tests run real senders, Python's SysLogHandler and util-linux
// logger, against loopback sockets. Without them on PATH they are
// skipped, except in CI.

func lookTool(t *testing.T, name string) string {
	t.Helper()
	return testtool.Require(t, name)
}

func run(t *testing.T, stdin string, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "PYTHONIOENCODING=utf-8")
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, stderr.String())
	}
	return out
}

// receiver collects what arrives on a loopback UDP socket and on the
// connections to a loopback TCP listener, for a bounded time.
type receiver struct {
	udp       net.PacketConn
	tcp       net.Listener
	datagrams chan []byte
	streams   chan []byte
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		udp.Close()
		t.Fatal(err)
	}
	r := &receiver{udp: udp, tcp: tcp, datagrams: make(chan []byte, 100), streams: make(chan []byte, 10)}
	t.Cleanup(func() { udp.Close(); tcp.Close() })
	deadline := time.Now().Add(30 * time.Second)
	go func() {
		buf := make([]byte, 65536)
		_ = udp.SetReadDeadline(deadline)
		for {
			n, _, err := udp.ReadFrom(buf)
			if err != nil {
				close(r.datagrams)
				return
			}
			r.datagrams <- bytes.Clone(buf[:n])
		}
	}()
	go func() {
		_ = tcp.(*net.TCPListener).SetDeadline(deadline)
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(deadline)
				var b bytes.Buffer
				_, _ = b.ReadFrom(c)
				r.streams <- b.Bytes()
			}()
		}
	}()
	return r
}

func (r *receiver) ports() (udp, tcp string) {
	return strconv.Itoa(r.udp.LocalAddr().(*net.UDPAddr).Port), strconv.Itoa(r.tcp.Addr().(*net.TCPAddr).Port)
}

func (r *receiver) datagram(t *testing.T) []byte {
	t.Helper()
	select {
	case d, ok := <-r.datagrams:
		if ok {
			return d
		}
	case <-time.After(30 * time.Second):
	}
	t.Fatal("no datagram")
	return nil
}

func (r *receiver) stream(t *testing.T) []byte {
	t.Helper()
	select {
	case s := <-r.streams:
		return s
	case <-time.After(30 * time.Second):
	}
	t.Fatal("no stream")
	return nil
}

// sysLogHandlerScript sends records through one SysLogHandler over UDP
// and one over TCP, set up in turn as applications and gunicorn set
// them up, and prints for each what the handler sent: the PRI, the
// program the message starts with, and the formatted text after it.
const sysLogHandlerScript = `
import json, logging, logging.handlers, socket, sys
H = logging.handlers.SysLogHandler
udp = H(address=('127.0.0.1', int(sys.argv[1])), socktype=socket.SOCK_DGRAM)
tcp = H(address=('127.0.0.1', int(sys.argv[2])), socktype=socket.SOCK_STREAM)
lg = logging.getLogger('app.web')
lg.setLevel(1)
lg.propagate = False
lg.addHandler(udp)
lg.addHandler(tcp)

# gunicorn 20.1, glogging.Logger: access_log_format % atoms, sent by a
# SysLogHandler whose formatter is "gunicorn.<prefix>.access: " + syslog_fmt.
access = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"' % {
    'h': '127.0.0.1', 'l': '-', 'u': '-', 't': '[22/Nov/2026:00:40:51 +0000]', 'r': 'GET /?q=é HTTP/1.1',
    's': '200', 'b': '12', 'f': '-', 'a': 'curl/7.88.1'}

cases = [
    # (program, ident, format, facility, level, msg, args, exc)
    ('myapp', 'myapp: ', '%(message)s', H.LOG_USER, logging.ERROR, 'request failed', (), True),
    ('myapp', 'myapp: ', '%(message)s', H.LOG_USER, logging.INFO, 'hello %s', ('wörld',), False),
    ('', None, '%(message)s', H.LOG_DAEMON, logging.WARNING, 'disk %d%% full', (93,), False),
    ('gunicorn.myproj.access', None, 'gunicorn.myproj.access: [%(process)d] %(message)s', H.LOG_LOCAL0,
     logging.INFO, access, (), False),
    ('gunicorn.myproj.error', None, 'gunicorn.myproj.error: [%(process)d] %(message)s', H.LOG_LOCAL0,
     logging.INFO, 'Booting worker with pid: %s', (1235,), False),
    ('gunicorn.myproj.error', None, 'gunicorn.myproj.error: [%(process)d] %(message)s', H.LOG_LOCAL0,
     logging.CRITICAL, 'WORKER TIMEOUT (pid:%s)', (1235,), False),
    ('app.web', None, '%(name)s: %(levelname)s %(message)s', H.LOG_LOCAL7, logging.DEBUG, '日本語 ☃', (), False),
    ('', None, '%(levelname)s:%(name)s:%(message)s', H.LOG_USER, 25, 'custom level', (), False),
]
out = []
for program, ident, fmt, facility, level, msg, args, exc in cases:
    for h in (udp, tcp):
        h.setFormatter(logging.Formatter(fmt))
        h.ident = ident
        h.facility = facility
    exc_info = None
    if exc:
        try:
            {}['missing']
        except KeyError:
            exc_info = sys.exc_info()
    record = lg.makeRecord(lg.name, level, 'x.py', 1, msg, args, exc_info)
    full = (ident or '') + udp.format(record)
    pri = udp.encodePriority(facility, udp.mapPriority(record.levelname))
    lg.handle(record)
    text = full[len(program) + 2:] if program else full
    out.append({'facility': pri >> 3, 'severity': pri & 7, 'program': program, 'text': text})
udp.close()
tcp.close()
print(json.dumps(out))
`

func TestPythonSysLogHandler(t *testing.T) {
	py := lookTool(t, "python3")
	r := newReceiver(t)
	udpPort, tcpPort := r.ports()
	var want []struct {
		Facility, Severity int
		Program, Text      string
	}
	if err := json.Unmarshal(run(t, "", py, "-c", sysLogHandlerScript, udpPort, tcpPort), &want); err != nil {
		t.Fatal(err)
	}
	var datagrams [][]byte
	for range want {
		datagrams = append(datagrams, r.datagram(t))
	}
	stream := r.stream(t)
	t.Logf("TCP stream: %q", stream)
	var frames [][]byte
	for name, wrap := range readers {
		sc := NewScanner(wrap(bytes.NewReader(stream)), 0)
		var got [][]byte
		for sc.Scan() {
			got = append(got, bytes.Clone(sc.Bytes()))
		}
		if sc.Err() != nil || len(got) != len(want) {
			t.Fatalf("TCP stream read %s: %d frames, %v; want %d", name, len(got), sc.Err(), len(want))
		}
		frames = got
	}
	now := time.Now()
	for i, w := range want {
		for transport, b := range map[string][]byte{"udp": datagrams[i], "tcp": frames[i]} {
			m, err := Parse(b, now, time.UTC)
			if err != nil {
				t.Errorf("%s message %d %q: %v", transport, i, b, err)
				continue
			}
			if m.Format != Bare || m.Facility != w.Facility || m.Severity != w.Severity || m.AppName != w.Program ||
				m.Message != w.Text || !m.Timestamp.IsZero() {
				t.Errorf("%s message %d %q:\n got %+v\nwant %+v", transport, i, b, m, w)
			}
		}
	}
	// The records of the gunicorn access line.
	m, _ := Parse(datagrams[3], now, time.UTC)
	rec := ToRecord(m, now)
	if rec.App != "gunicorn" || rec.Facility != "myproj.access" || rec.LevelName != "info" || rec.LevelNo != 20 ||
		!strings.Contains(rec.Message, `"GET /?q=é HTTP/1.1" 200 12`) {
		t.Errorf("gunicorn access record %+v", rec)
	}
	if !strings.Contains(want[0].Text, "Traceback (most recent call last):\n") {
		t.Errorf("first case has no traceback: %q", want[0].Text)
	}
}

// TestLogger sends with util-linux logger in its RFC 5424 and RFC 3164
// modes, over UDP and over TCP with both framings.
func TestLogger(t *testing.T) {
	logger := lookTool(t, "logger")
	host, _ := os.Hostname()
	r := newReceiver(t)
	udpPort, tcpPort := r.ports()
	start := time.Now()

	run(t, "", logger, "-n", "127.0.0.1", "-P", udpPort, "-d", "--rfc5424", "--msgid", "ID47", "-t", "app.web",
		"-p", "local0.warning", "--sd-id", "zoo@123", "--sd-param", `tiger="hungry \"x\" \]"`, "hello wörld")
	run(t, "", logger, "-n", "127.0.0.1", "-P", udpPort, "-d", "--rfc3164", "-i", "-t", "myapp", "-p", "mail.err", "plain")
	run(t, "line one\nline two\n", logger, "-n", "127.0.0.1", "-P", tcpPort, "-T", "--rfc5424", "--octet-count", "-t", "counted")
	s1 := r.stream(t)
	run(t, "line one\nline two\n", logger, "-n", "127.0.0.1", "-P", tcpPort, "-T", "--rfc3164", "-t", "lf")
	s2 := r.stream(t)

	check := func(what string, b []byte, format Format, fac, sev int, app, msg string) Message {
		t.Helper()
		m, err := Parse(b, time.Now(), time.Local)
		if err != nil {
			t.Fatalf("%s %q: %v", what, b, err)
		}
		if m.Format != format || m.Facility != fac || m.Severity != sev || m.AppName != app || m.Message != msg ||
			!strings.HasPrefix(host, m.Hostname) || m.Hostname == "" {
			t.Errorf("%s %q:\n got %+v", what, b, m)
		}
		if d := m.Timestamp.Sub(start); d < -2*time.Second || d > time.Minute {
			t.Errorf("%s: timestamp %v, started at %v", what, m.Timestamp, start)
		}
		return m
	}
	m := check("rfc5424 udp", r.datagram(t), RFC5424, 16, 4, "app.web", "hello wörld")
	if m.MsgID != "ID47" || !strings.HasSuffix(m.StructuredData, `[zoo@123 tiger="hungry \"x\" \]"]`) {
		t.Errorf("msgid %q, structured data %q", m.MsgID, m.StructuredData)
	}
	m = check("rfc3164 udp", r.datagram(t), RFC3164, 2, 3, "myapp", "plain")
	if m.ProcID == "" {
		t.Errorf("no procid in %+v", m)
	}
	for name, s := range map[string][]byte{"octet-counted": s1, "LF": s2} {
		sc := NewScanner(bytes.NewReader(s), 0)
		var frames [][]byte
		for sc.Scan() {
			frames = append(frames, bytes.Clone(sc.Bytes()))
		}
		if sc.Err() != nil || len(frames) != 2 {
			t.Fatalf("%s stream %q: %d frames, %v", name, s, len(frames), sc.Err())
		}
		format, app := RFC5424, "counted"
		if name == "LF" {
			format, app = RFC3164, "lf"
		}
		check(name+" 1", frames[0], format, 1, 5, app, "line one")
		check(name+" 2", frames[1], format, 1, 5, app, "line two")
	}
}

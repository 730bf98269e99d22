package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/testtool"
)

// sentReceivedCaddyfile is the one Caddy every cell of
// TestSyslogSentReceived sends to: a syslog receiver on UDP, TCP and TLS
// with its default settings (framing auto), one that takes the PROXY
// protocol from loopback, on TCP and TLS, and one on TCP for each
// framing set explicitly, octet and lf. accept_unknown keeps the record of any app,
// so a message filed under the wrong app is seen, not refused.
var sentReceivedCaddyfile = appsCaddyfile(`
		accept_unknown
		syslog udp/127.0.0.1:UDPPORT tcp/127.0.0.1:TCPPORT tls/127.0.0.1:TLSPORT {
			tls {
				certificate SERVERCERT SERVERKEY
			}
		}
		syslog tcp/127.0.0.1:PROXYPORT tls/127.0.0.1:PROXYTLSPORT {
			proxy_protocol {
				allow 127.0.0.1/32
			}
			tls {
				certificate SERVERCERT SERVERKEY
			}
		}
		syslog tcp/127.0.0.1:OCTETPORT {
			framing octet
		}
		syslog tcp/127.0.0.1:LFPORT {
			framing lf
		}`, "")

// sentReceivedTZ is the time zone of Caddy and of every sender: not UTC,
// so that a zone-less timestamp read as UTC rather than as local time
// shows as a record 5.5 hours off.
const sentReceivedTZ = "Asia/Kolkata"

// receiverPorts are the listening ports of sentReceivedCaddyfile.
type receiverPorts struct {
	udp, tcp, tls, proxy, proxyTLS int
	octet, lf                      int // TCP with framing octet, lf
}

// sentReceived is the shared Caddy and what it wrote so far.
type sentReceived struct {
	s     *server
	pki   *tlsPKI
	ports receiverPorts
	out   *appsLog
}

// TestSyslogSentReceived sends through syslog-ng's load generator
// (loggen) in each of its modes, and through rsyslog's and syslog-ng's
// own forwarding in each of their standard templates and transports, to
// one Caddy, and checks that every message sent arrives exactly once,
// under the app its header names, with its own time.
func TestSyslogSentReceived(t *testing.T) {
	if _, err := os.Stat(filepath.Join("/usr/share/zoneinfo", sentReceivedTZ)); err != nil {
		t.Fatalf("time zone %s: %v (Debian package tzdata)", sentReceivedTZ, err)
	}
	t.Setenv("TZ", sentReceivedTZ) // for Caddy and every daemon started below
	pki := tlsNewPKI(t)
	p := receiverPorts{udp: freeUDPPort(t), tcp: freePort(t), tls: freePort(t), proxy: freePort(t), proxyTLS: freePort(t),
		octet: freePort(t), lf: freePort(t)}
	cfg := strings.NewReplacer(
		"UDPPORT", fmt.Sprint(p.udp), "TCPPORT", fmt.Sprint(p.tcp), "TLSPORT", fmt.Sprint(p.tls),
		"PROXYPORT", fmt.Sprint(p.proxy), "PROXYTLSPORT", fmt.Sprint(p.proxyTLS),
		"OCTETPORT", fmt.Sprint(p.octet), "LFPORT", fmt.Sprint(p.lf),
		"SERVERCERT", pki.ServerCert, "SERVERKEY", pki.ServerKey,
	).Replace(sentReceivedCaddyfile)
	s := startCaddy(t, cfg)
	sr := &sentReceived{s: s, pki: pki, ports: p, out: &appsLog{path: filepath.Join(s.Dir, "apps.log")}}
	// loggen first: its cells run one after another and own whatever
	// arrives meanwhile; the forwarders' messages name their cell.
	t.Run("loggen", sr.loggen)
	t.Run("rsyslog", sr.rsyslog)
	t.Run("syslog-ng", sr.syslogNG)
}

// loggenMode is one way of running loggen.
type loggenMode struct {
	name string
	args []string
	port func(receiverPorts) int
	// host is the record's expected host: the peer, or the client the
	// PROXY header names.
	host string
	// conns is the number of connections; loggen sends -n messages on
	// each.
	conns int
}

const (
	// Messages per connection on streams, at most 20,000 a second.
	loggenPerConn = 2000
	// On UDP, loggen's own default rate: it sends each second's worth
	// of messages at once, a burst that Linux's default 208 KiB receive
	// buffer cannot hold (166 of loggen's 256-byte datagrams); the
	// receiver asks for 4 MiB, which root (as in CI) is granted.
	loggenPerConnUDP = 2000
	loggenRateUDP    = 1000
	// loggenProxySrc is the client a PROXY header names.
	loggenProxySrc = "10.20.30.40"
)

var loggenModes = []loggenMode{
	{name: "tcp-legacy", args: []string{"--inet", "--stream"}, port: func(p receiverPorts) int { return p.tcp }},
	{name: "tcp-legacy-3-connections", args: []string{"--inet", "--stream", "--active-connections=3"}, port: func(p receiverPorts) int { return p.tcp }, conns: 3},
	{name: "udp-legacy", args: []string{"--inet", "--dgram"}, port: func(p receiverPorts) int { return p.udp }},
	// RFC 5424 is octet-counted (RFC 6587) unless --no-framing; over UDP,
	// loggen puts the octet count into each datagram as well.
	{name: "tcp-rfc5424-framed", args: []string{"--inet", "--stream", "--syslog-proto"}, port: func(p receiverPorts) int { return p.tcp }},
	{name: "tcp-rfc5424-unframed", args: []string{"--inet", "--stream", "--syslog-proto", "--no-framing"}, port: func(p receiverPorts) int { return p.tcp }},
	// The same on receivers whose framing is set rather than detected.
	{name: "tcp-legacy-framing-lf", args: []string{"--inet", "--stream"}, port: func(p receiverPorts) int { return p.lf }},
	{name: "tcp-rfc5424-framed-framing-octet", args: []string{"--inet", "--stream", "--syslog-proto"}, port: func(p receiverPorts) int { return p.octet }},
	{name: "tcp-rfc5424-unframed-framing-lf", args: []string{"--inet", "--stream", "--syslog-proto", "--no-framing"}, port: func(p receiverPorts) int { return p.lf }},
	{name: "udp-rfc5424-framed", args: []string{"--inet", "--dgram", "--syslog-proto"}, port: func(p receiverPorts) int { return p.udp }},
	{name: "udp-rfc5424-unframed", args: []string{"--inet", "--dgram", "--syslog-proto", "--no-framing"}, port: func(p receiverPorts) int { return p.udp }},
	{name: "tcp-proxy-legacy", args: []string{"--inet", "--stream", "--proxied", "--proxy-src-ip=" + loggenProxySrc}, port: func(p receiverPorts) int { return p.proxy }, host: loggenProxySrc},
	{name: "tcp-proxy-rfc5424-framed", args: []string{"--inet", "--stream", "--proxied", "--proxy-src-ip=" + loggenProxySrc, "--syslog-proto"}, port: func(p receiverPorts) int { return p.proxy }, host: loggenProxySrc},
	{name: "tls-legacy", args: []string{"--use-ssl"}, port: func(p receiverPorts) int { return p.tls }},
	{name: "tls-rfc5424-framed", args: []string{"--use-ssl", "--syslog-proto"}, port: func(p receiverPorts) int { return p.tls }},
	{name: "tls-rfc5424-unframed", args: []string{"--use-ssl", "--syslog-proto", "--no-framing"}, port: func(p receiverPorts) int { return p.tls }},
	// The PROXY header before the TLS handshake, as a TCP load balancer
	// passing TLS through sends it.
	{name: "tls-proxy-rfc5424-framed", args: []string{"--use-ssl", "--proxied-tls-passthrough", "--proxy-src-ip=" + loggenProxySrc, "--syslog-proto"}, port: func(p receiverPorts) int { return p.proxyTLS }, host: loggenProxySrc},
}

// loggen finds loggen, which ships with the syslog-ng that syslogNG
// finds, and the environment it needs.
func loggen(t *testing.T) (bin string, env []string) {
	t.Helper()
	bin, env, err := syslogNG(t).Loggen()
	if err != nil {
		testtool.Missing(t, "%v", err)
	}
	return bin, env
}

var (
	// loggenCount is loggen's own tally, printed when it ends:
	// "average rate = ... msg/sec, count=2000, time=..." or
	// "Total runtime = ..., count = 0".
	loggenCount = regexp.MustCompile(`count ?= ?(\d+)`)
	// loggenSeq reads a loggen message's sequence number and thread.
	loggenSeq = regexp.MustCompile(`seq: (\d{10}), thread: (\d{4}), runid: `)
)

func (sr *sentReceived) loggen(t *testing.T) {
	bin, env := loggen(t)
	for _, m := range loggenModes {
		t.Run(m.name, func(t *testing.T) {
			if late := sr.out.read(t); len(late) > 0 {
				t.Errorf("%d records arrived after the previous cell ended, e.g. %v", len(late), late[0])
			}
			perConn, rate := loggenPerConn, 20000
			if slices.Contains(m.args, "--dgram") {
				perConn, rate = loggenPerConnUDP, loggenRateUDP
			}
			args := append([]string{}, m.args...)
			args = append(args, "--number="+fmt.Sprint(perConn), "--rate="+fmt.Sprint(rate), "--interval=30", "127.0.0.1", fmt.Sprint(m.port(sr.ports)))
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), env...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			started := time.Now()
			udpDrops := udpRcvbufErrors()
			if err := runBounded(cmd, 30*time.Second); err != nil {
				t.Fatalf("loggen %s: %v\n%s", strings.Join(args, " "), err, out.String())
			}
			c := loggenCount.FindAllStringSubmatch(out.String(), -1)
			if len(c) == 0 {
				t.Fatalf("loggen %s printed no count:\n%s", strings.Join(args, " "), out.String())
			}
			sent, _ := strconv.Atoi(c[len(c)-1][1])
			conns := max(m.conns, 1)
			// With --proxied, the header takes the place of the first
			// message on each connection.
			if sent < conns*(perConn-1) {
				t.Errorf("loggen %s sent %d, want %d:\n%s", strings.Join(args, " "), sent, conns*perConn, out.String())
			}
			recs := sr.out.wait(t, sent, 15*time.Second)
			if n := udpRcvbufErrors() - udpDrops; n > 0 {
				t.Logf("the kernel dropped %d UDP datagrams for a full receive buffer meanwhile (/proc/net/snmp)", n)
			}
			host := m.host
			if host == "" {
				host = "127.0.0.1"
			}
			seen := map[string]int{}
			bad := 0
			for _, r := range recs {
				msg, _ := r["msg"].(string)
				sm := loggenSeq.FindStringSubmatch(msg)
				problem := ""
				switch {
				case sm == nil:
					problem = "no loggen sequence number"
				case r["app"] != "prg00000" || !loggerOf(r, "prg00000"):
					problem = fmt.Sprintf("app %v, logger %v, want prg00000", r["app"], r["logger"])
				case r["host"] != host:
					problem = fmt.Sprintf("host %v, want %s", r["host"], host)
				case !strings.HasPrefix(strings.TrimPrefix(msg, "\ufeff"), "seq: "):
					problem = "message does not start after the header"
				default:
					if skew := recordSkew(r, started); skew > 10*time.Minute || skew < -10*time.Minute {
						problem = fmt.Sprintf("time %v off the send time", skew)
					}
				}
				if problem == "" {
					seq, _ := strconv.Atoi(sm[1])
					thread, _ := strconv.Atoi(sm[2])
					if seq >= perConn || thread >= conns {
						problem = "sequence number or thread out of range"
					}
					seen[sm[2]+"/"+sm[1]]++
				}
				if problem != "" {
					if bad++; bad <= 3 {
						t.Errorf("%s: %v", problem, r)
					}
				}
			}
			dups := 0
			for _, n := range seen {
				dups += n - 1
			}
			logCell(t, "loggen "+strings.Join(m.args, " "), sent, len(seen), len(recs))
			if len(recs) != sent || len(seen) != sent || dups != 0 || bad != 0 {
				t.Errorf("sent %d, received %d records, %d distinct, %d duplicates, %d bad; the receiver's own lines:\n%s",
					sent, len(recs), len(seen), dups, bad, sr.out.diagnostics())
			}
		})
	}
}

// logCell notes a cell's counts: messages sent, distinct messages
// received, and records written (more than distinct if some came twice).
func logCell(t *testing.T, sender string, sent, distinct, records int) {
	t.Logf("sent %d, received %d distinct in %d records: %s", sent, distinct, records, sender)
}

// loggerOf reports whether a record was emitted under app's logger,
// applog.<app> or applog.<app>.<facility>, which decides where Caddy
// writes it.
func loggerOf(r map[string]any, app string) bool {
	l, _ := r["logger"].(string)
	return l == "applog."+app || strings.HasPrefix(l, "applog."+app+".")
}

// udpRcvbufErrors is the kernel's count of UDP datagrams dropped for a
// full receive buffer (all sockets), or 0 if unknown.
func udpRcvbufErrors() int {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == "RcvbufErrors" && i < len(f) {
				n, _ := strconv.Atoi(f[i])
				return n
			}
		}
	}
	return 0
}

// recordSkew is how far a record's time is from t.
func recordSkew(r map[string]any, t time.Time) time.Duration {
	ts, ok := r["ts"].(json.Number)
	if !ok {
		return 1 << 62
	}
	f, err := ts.Float64()
	if err != nil {
		return 1 << 62
	}
	return time.Unix(0, int64(f*1e9)).Sub(t)
}

// appsLog reads the JSON lines Caddy appends to a file, each once.
type appsLog struct {
	path    string
	off     int64
	partial []byte
	// diag are the lines without an app: the receiver's own warnings.
	diag []string
}

// read returns the records appended since the last read.
func (a *appsLog) read(t *testing.T) []map[string]any {
	t.Helper()
	f, err := os.Open(a.path)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(a.off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	a.off += int64(len(data))
	data = append(a.partial, data...)
	end := bytes.LastIndexByte(data, '\n') + 1
	a.partial = append([]byte(nil), data[end:]...)
	var recs []map[string]any
	for _, line := range bytes.Split(data[:end], []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: not JSON: %v: %q", a.path, err, line)
		}
		if _, ok := m["app"]; !ok {
			a.diag = append(a.diag, string(line))
			continue
		}
		recs = append(recs, m)
	}
	return recs
}

// wait reads until n records arrived, nothing arrived for 5s, or limit
// passed; then a moment longer, so that duplicates and strays arriving
// late are counted too.
func (a *appsLog) wait(t *testing.T, n int, limit time.Duration) []map[string]any {
	t.Helper()
	var recs []map[string]any
	deadline := time.Now().Add(limit)
	progress := time.Now()
	for len(recs) < n && time.Now().Before(deadline) && time.Since(progress) < 5*time.Second {
		if more := a.read(t); len(more) > 0 {
			recs = append(recs, more...)
			progress = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return append(recs, a.read(t)...)
}

// diagnostics returns the receiver's own lines read so far, and forgets them.
func (a *appsLog) diagnostics() string {
	d := strings.Join(a.diag, "\n")
	a.diag = nil
	if d == "" {
		return "(none)"
	}
	return d
}

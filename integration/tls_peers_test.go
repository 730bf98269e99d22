package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/testdaemon"
)

// tlsArrival is one message as a peer wrote it down.
type tlsArrival struct {
	facility, severity, app, msg string
}

// tlsPeer is a syslog-over-TLS server started by a test on a loopback
// port, requiring client certificates from the test CA: rsyslog (GnuTLS),
// syslog-ng (OpenSSL) or a second Caddy (Go's crypto/tls). Each writes
// what it receives to files that arrivals reads back.
type tlsPeer struct {
	name string
	port int
	t    *testing.T

	start func() // (re)starts the peer on port
	stop  func() // stops it gracefully
	outs  func() []tlsArrival
}

// Addr is the peer's host:port.
func (p *tlsPeer) Addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

// tlsPeerStarters are the three peers, by name.
var tlsPeerStarters = []struct {
	name  string
	start func(*testing.T, *tlsPKI) *tlsPeer
}{
	{"rsyslog", tlsStartRsyslog},
	{"syslog-ng", tlsStartSyslogNG},
	{"caddy", tlsStartCaddyPeer},
}

// tlsDaemon is a peer's daemon process, stopped (SIGTERM) and started
// again on the same configuration by tests that take the peer away.
type tlsDaemon struct {
	t     *testing.T
	name  string
	cmd   func() *exec.Cmd // a new command line for each run
	ports []int
	run   *testdaemon.Daemon // nil while stopped
}

// start runs the daemon until t ends, failing t if it does not listen.
func (d *tlsDaemon) start() {
	d.t.Helper()
	d.run = keepDaemon(d.t)(testdaemon.Start(context.Background(), d.name, d.cmd(), d.ports...))
}

func (d *tlsDaemon) stop() {
	if d.run != nil {
		d.run.Stop()
		d.run = nil
	}
}

// tlsStartRsyslog runs rsyslogd with imtcp on GnuTLS ("gtls" stream
// driver, mode 1 = TLS only), authenticating clients by certificate
// name (x509/name: a chain to the test CA and the permitted name).
func tlsStartRsyslog(t *testing.T, p *tlsPKI) *tlsPeer {
	t.Helper()
	r := rsyslogTLS(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	peer := &tlsPeer{name: "rsyslog", port: freePort(t), t: t}
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k"
	defaultNetstreamDriver="gtls"
	defaultNetstreamDriverCAFile=%q
	defaultNetstreamDriverCertFile=%q
	defaultNetstreamDriverKeyFile=%q)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1"
	streamDriver.authMode="x509/name" permittedPeer=[%q])
input(type="imtcp" address="127.0.0.1" port="%d")
template(name="line" type="string" string="%%syslogfacility-text%%|%%syslogseverity-text%%|%%app-name%%|%%hostname%%|%%msg%%\n")
*.* action(type="omfile" file=%q template="line")
`, dir, p.CA, p.ServerCert, p.ServerKey, tlsClientName, peer.port, out)
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &tlsDaemon{t: t, name: "rsyslog", cmd: func() *exec.Cmd { return r.Command(dir) }, ports: []int{peer.port}}
	peer.start, peer.stop = d.start, d.stop
	peer.outs = func() []tlsArrival { return tlsPipeArrivals(out) }
	peer.start()
	return peer
}

// tlsStartSyslogNG runs syslog-ng with its syslog() source on TLS
// (OpenSSL), requiring a client certificate that chains to the test CA.
func tlsStartSyslogNG(t *testing.T, p *tlsPKI) *tlsPeer {
	t.Helper()
	ng := syslogNG(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	peer := &tlsPeer{name: "syslog-ng", port: freePort(t), t: t}
	conf := fmt.Sprintf(`@version: 3.38
options { keep-hostname(yes); log-msg-size(65536); };
source s_tls {
	syslog(ip("127.0.0.1") port(%d) transport("tls")
		tls(ca-file(%q) cert-file(%q) key-file(%q) peer-verify(required-trusted)));
};
destination d_file { file(%q template("${FACILITY}|${LEVEL}|${PROGRAM}|${HOST}|${MSG}\n")); };
log { source(s_tls); destination(d_file); };
`, peer.port, p.CA, p.ServerCert, p.ServerKey, out)
	if err := os.WriteFile(filepath.Join(dir, "syslog-ng.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &tlsDaemon{t: t, name: "syslog-ng", cmd: func() *exec.Cmd { return ng.Command(dir) }, ports: []int{peer.port}}
	peer.start, peer.stop = d.start, d.stop
	peer.outs = func() []tlsArrival { return tlsPipeArrivals(out) }
	peer.start()
	return peer
}

// tlsPipeArrivals reads "facility|severity|app|host|msg" lines.
func tlsPipeArrivals(path string) []tlsArrival {
	var out []tlsArrival
	for _, line := range tlsFileLines(path) {
		parts := strings.SplitN(line, "|", 5)
		if len(parts) != 5 {
			out = append(out, tlsArrival{msg: line})
			continue
		}
		out = append(out, tlsArrival{facility: parts[0], severity: parts[1], app: parts[2], msg: strings.TrimPrefix(parts[4], " ")})
	}
	return out
}

// tlsStartCaddyPeer runs a second Caddy whose applog `syslog tls/`
// receiver requires client certificates from the test CA. A restart
// gets a new scratch folder on the same port; arrivals reads them all.
func tlsStartCaddyPeer(t *testing.T, p *tlsPKI) *tlsPeer {
	return tlsStartCaddyPeerCA(t, p, freePort(t), p.CA)
}

// tlsStartCaddyPeerCA is tlsStartCaddyPeer on a chosen port, trusting
// clientCA for client certificates.
func tlsStartCaddyPeerCA(t *testing.T, p *tlsPKI, port int, clientCA string) *tlsPeer {
	t.Helper()
	peer := &tlsPeer{name: "caddy", port: port, t: t}
	var runs []*server
	peer.start = func() { runs = append(runs, tlsStartReceiver(t, p, port, clientCA)) }
	peer.stop = func() {
		if len(runs) > 0 {
			runs[len(runs)-1].stop()
		}
	}
	peer.outs = func() []tlsArrival {
		var out []tlsArrival
		for _, s := range runs {
			for _, line := range tlsFileLines(filepath.Join(s.Dir, "received.log")) {
				var e struct {
					App       string         `json:"app"`
					LevelName string         `json:"level_name"`
					Msg       string         `json:"msg"`
					Attrs     map[string]any `json:"attrs"`
				}
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					out = append(out, tlsArrival{msg: line})
					continue
				}
				facility, _ := e.Attrs["syslog_facility"].(string)
				out = append(out, tlsArrival{facility: facility, severity: e.LevelName, app: e.App, msg: e.Msg})
			}
		}
		return out
	}
	peer.start()
	return peer
}

// waitArrivals waits (bounded) until at least n messages containing
// marker arrived, and returns those.
func (p *tlsPeer) waitArrivals(marker string, n int, limit time.Duration) []tlsArrival {
	var got []tlsArrival
	tlsWaitFor(limit, func() bool {
		got = got[:0]
		for _, a := range p.outs() {
			if strings.Contains(a.msg, marker) {
				got = append(got, a)
			}
		}
		return len(got) >= n
	})
	return got
}

// TestTLSPeers checks each peer's setup with a plain crypto/tls client
// before any writer is involved: octet-counted RFC 5424 frames from a
// client with the test CA's certificate arrive with their facility,
// severity and app-name; a client with the rogue CA's certificate (same
// name, another issuer) is refused and nothing of it is written.
func TestTLSPeers(t *testing.T) {
	p := tlsNewPKI(t)
	for _, ps := range tlsPeerStarters {
		t.Run(ps.name, func(t *testing.T) {
			peer := ps.start(t, p)
			var msgs []string
			for i := range 5 {
				// local6 (22), warning (4)
				msgs = append(msgs, tlsRFC5424(22*8+4, "shop", fmt.Sprintf("peer check good %d ✓", i)))
			}
			if err := tlsSendFrames(peer.Addr(), p.ClientConfig(t, p.ClientCert, p.ClientKey), msgs); err != nil {
				t.Fatalf("good client: %v", err)
			}
			got := peer.waitArrivals("peer check good", 5, 15*time.Second)
			if len(got) != 5 {
				t.Fatalf("%d of 5 messages arrived: %v", len(got), peer.outs())
			}
			for i, a := range got {
				want := tlsArrival{"local6", "warning", "shop", fmt.Sprintf("peer check good %d ✓", i)}
				if a != want {
					t.Errorf("arrival %d: %+v, want %+v", i, a, want)
				}
			}
			err := tlsSendFrames(peer.Addr(), p.ClientConfig(t, p.RogueCert, p.RogueKey),
				[]string{tlsRFC5424(22*8+4, "shop", "peer check rogue")})
			if err == nil {
				t.Errorf("rogue client accepted")
			} else {
				t.Logf("rogue client refused: %v", err)
			}
			time.Sleep(500 * time.Millisecond)
			if got := peer.waitArrivals("peer check rogue", 1, 0); len(got) != 0 {
				t.Errorf("rogue client's message was written: %v", got)
			}
		})
	}
}

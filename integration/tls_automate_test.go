package integration

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/testpki"
	"github.com/caddy-applog/caddy-applog/internal/testtool"
	"github.com/caddy-applog/caddy-applog/internal/tlsconfig"
)

// The names the aggregator's and the edge's certificates are for: loopback
// addresses of their own, as an ACME server validates the http-01
// challenge of an IP identifier on port 80 of that address, where each
// Caddy's solver listens (default_bind).
const (
	automateAggregatorIP = "127.0.0.57"
	automateEdgeIP       = "127.0.0.58"
)

// automateCACaddyfile is a Caddy running Caddy's own PKI as an ACME
// server: CA `applog`, whose root the others trust, issuing certificates
// of the shortest lifetime its ACME provisioner allows (5 minutes).
const automateCACaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	skip_install_trust
	auto_https disable_redirects
	pki {
		ca applog {
			name "applog test ACME CA"
		}
	}
}

https://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	tls {
		issuer internal {
			ca applog
		}
	}
	acme_server {
		ca applog
		lifetime 5m
		challenges http-01
	}
}
`

// automateGlobal are the global options both the edge and the aggregator
// get their certificates with: ACME from the CA Caddy (its root written
// by that Caddy, not by hand), the challenge answered on BIND:80, and
// renewal once a quarter of a certificate's life has passed (about 30 s
// after it was issued, the CA backdating it a minute), checked every 2 s.
const automateGlobal = `	admin 127.0.0.1:{{.AdminPort}}
	skip_install_trust
	default_bind BIND
	renew_interval 2s
	renewal_window_ratio 0.75
	cert_issuer acme {
		dir ACMEDIR
		trusted_roots ROOT
		disable_tlsalpn_challenge
	}
`

// automateAggregatorCaddyfile receives syslog over mutual TLS with a
// certificate from the tls app and clients trusted through trust_pool.
const automateAggregatorCaddyfile = `{
GLOBAL	applog {
		syslog tls/AGGREGATOR:RPORT {
			tls {
				certificate_automate AGGREGATOR
				trust_pool file ROOT
			}
		}
		facility shop
	}
	log received {
		include applog.shop
		output file {{.Dir}}/received.log
		level DEBUG
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	respond "ok"
}
`

// automateEdgeCaddyfile forwards app `shop` to the aggregator with the
// tls writer (format syslog, spooled), presenting a client certificate
// from its tls app.
const automateEdgeCaddyfile = `{
GLOBAL	applog {
		facility shop
	}
	log forward {
		include applog.shop
		level DEBUG
		output tls AGGREGATOR:RPORT {
			ca ROOT
			client_cert_automate EDGE
			spool {{.Dir}}/spool
			backoff 100ms 1s
		}
		format syslog {
			facility local3
		}
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	handle /_applog {
		log_ingest shop
	}
	handle /status {
		log_status
	}
}
`

// TestTLSAutomate runs a mutual-TLS chain with no certificate files
// configured by hand: a Caddy runs an ACME server (Caddy's PKI), the
// aggregator Caddy's syslog tls/ receiver gets its certificate from it
// over ACME (certificate_automate) and trusts its root for clients
// (trust_pool), the edge Caddy's tls writer presents a client
// certificate from the same ACME CA (client_cert_automate). Under load,
// both certificates are renewed (short lifetimes): every record arrives
// exactly once and the listener serves the renewed certificate without a
// restart. Then the aggregator restarts, so that the edge connects again
// with its renewed certificate: nothing is lost.
func TestTLSAutomate(t *testing.T) {
	for _, ip := range []string{automateAggregatorIP, automateEdgeIP} {
		l, err := net.Listen("tcp", ip+":80")
		if err != nil {
			// Binding port 80 takes root or CAP_NET_BIND_SERVICE: a skip
			// on a developer's machine, a failure in CI.
			msg := fmt.Sprintf("the ACME http-01 challenge needs port 80 of %s (root, or CAP_NET_BIND_SERVICE): %v", ip, err)
			if testtool.CI() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		l.Close()
	}
	ca := startCaddy(t, automateCACaddyfile)
	root := filepath.Join(ca.Dir, "data", "caddy", "pki", "authorities", "applog", "root.crt")
	if !tlsWaitFor(20*time.Second, func() bool { _, err := os.Stat(root); return err == nil }) {
		t.Fatalf("the ACME CA's root %s did not appear:\n%s", root, ca.Output())
	}
	rport := freeTCPPort(t, automateAggregatorIP+":0")
	fill := func(cfg, bind string) string {
		cfg = strings.Replace(cfg, "GLOBAL", automateGlobal, 1)
		return strings.NewReplacer("BIND", bind, "ACMEDIR", fmt.Sprintf("https://127.0.0.1:%d/acme/applog/directory", ca.HTTPPort),
			"ROOT", root, "AGGREGATOR", automateAggregatorIP, "EDGE", automateEdgeIP, "RPORT", fmt.Sprint(rport)).Replace(cfg)
	}
	agg := startCaddy(t, fill(automateAggregatorCaddyfile, automateAggregatorIP))
	rootPool, err := tlsconfig.CertPool(root)
	if err != nil {
		t.Fatal(err)
	}
	aggAddr := fmt.Sprintf("%s:%d", automateAggregatorIP, rport)
	var first *big.Int
	if !tlsWaitFor(30*time.Second, func() bool { first, err = automateServedSerial(aggAddr, rootPool); return err == nil }) {
		t.Fatalf("the receiver served no certificate from the ACME CA: %v\naggregator:\n%s", err, agg.Output())
	}

	// trust_pool is enforced.
	automateRefusesRogue(t, aggAddr, rootPool)

	edge := startCaddy(t, fill(automateEdgeCaddyfile, automateEdgeIP))
	peer := automatePeer(t, agg, rport)
	marker := tlsMarker("automate")
	load := tlsStartLoad(edge.URL("/_applog"), marker, 2, 5*time.Millisecond)
	defer load.stop()
	if got := peer.waitArrivals(marker, 1, 60*time.Second); len(got) == 0 {
		t.Fatalf("no record reached the aggregator over mutual TLS\nedge:\n%s\naggregator:\n%s", edge.Output(), agg.Output())
	}
	edgeCert := filepath.Join(edge.Dir, "data", "caddy", "certificates", "*", automateEdgeIP, automateEdgeIP+".crt")
	edgeFirst, err := automateFileSerial(edgeCert)
	if err != nil {
		t.Fatal(err)
	}

	// Both certificates renew under load (about 30 s after issuance).
	var renewed, edgeRenewed *big.Int
	if !tlsWaitFor(90*time.Second, func() bool {
		renewed, _ = automateServedSerial(aggAddr, rootPool)
		edgeRenewed, _ = automateFileSerial(edgeCert)
		return renewed != nil && renewed.Cmp(first) != 0 && edgeRenewed != nil && edgeRenewed.Cmp(edgeFirst) != 0
	}) {
		t.Fatalf("not renewed in 90 s: receiver serves %x (first %x), edge's certificate %x (first %x)\naggregator:\n%s", renewed, first, edgeRenewed, edgeFirst, agg.Output())
	}
	time.Sleep(2 * time.Second)
	accepted := load.acceptedNow()
	ty := tlsWaitAll(peer, marker, seqsUpTo(load, accepted), 30*time.Second)
	if dups, extra := ty.duplicates(); extra > 0 {
		t.Errorf("renewal: %d records arrived twice: %s", len(dups), tlsShort(dups))
	}
	t.Logf("renewal: receiver certificate %x -> %x, edge's %x -> %x; %d records had arrived", first, renewed, edgeFirst, edgeRenewed, len(ty.counts))

	// The aggregator restarts on its storage: it serves the renewed
	// certificate, and the edge's new connection presents its renewed one.
	agg.stop()
	before := tlsCount(peer.outs(), marker).order
	agg.launch(t)
	var afterRestart *big.Int
	if !tlsWaitFor(30*time.Second, func() bool { afterRestart, err = automateServedSerial(aggAddr, rootPool); return err == nil }) {
		t.Fatalf("the restarted receiver served no certificate: %v\n%s", err, agg.Output())
	}
	if afterRestart.Cmp(first) == 0 {
		t.Errorf("the restarted receiver serves its first certificate %x, not a renewed one", first)
	}
	time.Sleep(3 * time.Second)
	all, failed := load.stop()
	if failed > 0 {
		t.Errorf("%d requests failed: %v", failed, load.lastErr)
	}
	ty = tlsWaitAll(peer, marker, all, 60*time.Second)
	t.Logf("%d accepted, %d arrivals of %d distinct records", len(all), len(ty.order), len(ty.counts))
	if miss := ty.missing(all); len(miss) > 0 {
		t.Errorf("lost %d accepted records: %s\nedge:\n%s", len(miss), tlsShort(miss), edge.Output())
	}
	if len(ty.order) <= len(before) {
		t.Errorf("nothing arrived after the aggregator restarted (%d before, %d in all)", len(before), len(ty.order))
	}
	tlsCheckDuplicates(t, "aggregator restart", before, ty)
	var ws tlsWriterSnap
	if !tlsWaitFor(5*time.Second, func() bool { ws, _ = tlsWriterStatus(t, edge, aggAddr); return ws.SpoolDepth == 0 }) {
		t.Errorf("spool not empty after delivery: %+v", ws)
	}
}

// automateRefusesRogue checks that the receiver at addr refuses a
// client certificate from another CA than the one it trusts.
func automateRefusesRogue(t *testing.T, addr string, pool *x509.CertPool) {
	t.Helper()
	host, _, _ := net.SplitHostPort(addr)
	rogue := testpki.NewCA(t, "applog rogue CA")
	cfg := &tls.Config{RootCAs: pool, ServerName: host, Certificates: []tls.Certificate{rogue.Issue(t, "rogue", x509.ExtKeyUsageClientAuth)}}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr, cfg)
	if err == nil { // TLS 1.3: the server's refusal comes after the client's handshake
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte("5 <14>1 - - - - - -\n"))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client certificate from another CA: %v, want the receiver to refuse it", err)
	}
}

// automatePeer reads what the receiver of Caddy s on port has written
// to received.log, a line per record.
func automatePeer(t *testing.T, s *server, port int) *tlsPeer {
	return &tlsPeer{name: "caddy", port: port, t: t, outs: func() []tlsArrival {
		var out []tlsArrival
		for _, line := range tlsFileLines(filepath.Join(s.Dir, "received.log")) {
			out = append(out, tlsArrival{msg: line})
		}
		return out
	}}
}

// seqsUpTo returns the first n records load had accepted.
func seqsUpTo(load *tlsLoad, n int) []int {
	load.mu.Lock()
	defer load.mu.Unlock()
	return append([]int(nil), load.accepted[:n]...)
}

// automateServedSerial handshakes with the receiver at addr, verifying
// its certificate against pool for the name in addr, and returns the
// certificate's serial. No client certificate is sent: the receiver
// refuses the connection after the handshake, once it has shown its own.
func automateServedSerial(addr string, pool *x509.CertPool) (*big.Int, error) {
	host, _, _ := net.SplitHostPort(addr)
	var serial *big.Int
	cfg := &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS13,
		VerifyConnection: func(cs tls.ConnectionState) error {
			serial = cs.PeerCertificates[0].SerialNumber
			return nil
		}}
	d := &net.Dialer{Timeout: 3 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if c != nil {
		c.Close()
	}
	if serial == nil {
		if err == nil {
			err = errors.New("no certificate")
		}
		return nil, err
	}
	return serial, nil
}

// automateFileSerial reads the serial of the certificate in the one file
// glob matches (Caddy's storage).
func automateFileSerial(glob string) (*big.Int, error) {
	files, _ := filepath.Glob(glob)
	if len(files) != 1 {
		return nil, fmt.Errorf("%s: %d files", glob, len(files))
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM", files[0])
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	return cert.SerialNumber, nil
}

// automateInternalCaddyfile is one Caddy whose syslog tls/ receiver
// takes its certificate from Caddy's internal CA (local_certs) and
// trusts that CA's clients (trust_pool pki_root); WRITER becomes a tls
// writer sending app `shop` to that receiver, whose records are filed
// under `relayed`.
const automateInternalCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	skip_install_trust
	local_certs
	applog {
		syslog tls/127.0.0.1:RPORT {
			app relayed
			tls {
				certificate_automate 127.0.0.1
				trust_pool pki_root local
			}
		}
		facility shop
		facility relayed
	}
	log received {
		include applog.relayed
		output file {{.Dir}}/received.log
		level DEBUG
		format json
	}
WRITER}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	log_ingest /_applog shop
}
`

const automateInternalWriter = `	log forward {
		include applog.shop
		level DEBUG
		output tls 127.0.0.1:RPORT {
			ca {{.Dir}}/data/caddy/pki/authorities/local/root.crt
			client_cert_automate ` + tlsClientName + `
			backoff 100ms 1s
		}
		format syslog
	}
`

// TestTLSAutomateInternal is `tls internal` at both ends in one Caddy:
// the receiver's certificate and the writer's client certificate come
// from Caddy's own CA, which the receiver trusts with trust_pool
// pki_root: a client certificate from another CA is refused, the
// writer's records arrive.
func TestTLSAutomateInternal(t *testing.T) {
	rport := freePort(t)
	cfg := strings.ReplaceAll(automateInternalCaddyfile, "RPORT", fmt.Sprint(rport))
	s := startCaddy(t, strings.Replace(cfg, "WRITER", "", 1))
	root := filepath.Join(s.Dir, "data", "caddy", "pki", "authorities", "local", "root.crt")
	addr := fmt.Sprintf("127.0.0.1:%d", rport)
	var pool *x509.CertPool
	var err error
	if !tlsWaitFor(20*time.Second, func() bool {
		if pool, err = tlsconfig.CertPool(root); err != nil {
			return false
		}
		_, err = automateServedSerial(addr, pool)
		return err == nil
	}) {
		t.Fatalf("the receiver served no certificate from Caddy's local CA: %v\n%s", err, s.Output())
	}
	automateRefusesRogue(t, addr, pool)
	// The writer needs the root file at provisioning, so it comes with a
	// reload once the CA has written it.
	s.reload(strings.Replace(cfg, "WRITER", strings.ReplaceAll(automateInternalWriter, "RPORT", fmt.Sprint(rport)), 1))
	marker := tlsMarker("internal")
	const n = 50
	tlsPostRange(t, s.URL("/_applog"), marker, 0, n)
	var want []int
	for seq := range n {
		want = append(want, seq)
	}
	// Every record once: n distinct sequence numbers in n arrivals.
	if ty := tlsWaitAll(automatePeer(t, s, rport), marker, want, 30*time.Second); len(ty.counts) != n || len(ty.order) != n {
		t.Fatalf("%d arrivals of %d distinct records, want each of %d once\n%s", len(ty.order), len(ty.counts), n, s.Output())
	}
	for _, l := range readLines(t, filepath.Join(s.Dir, "received.log")) {
		if l["app"] != "relayed" {
			t.Fatalf("a record of app %v, want relayed: %v", l["app"], l)
		}
	}
}

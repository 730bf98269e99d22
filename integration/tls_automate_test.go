package integration

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"

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

// automateAggregatorCaddyfile receives the edge's records by two doors,
// each requiring a client certificate from ROOT's CA: syslog over mutual
// TLS (app via_syslog, whatever app the sender names, into received.log)
// and log_ingest's OTLP door (app shop, into otlp.log). Both present the
// certificate certificate_automate has the tls app manage for AGGREGATOR.
//
// A client that dials an IP address sends no SNI (Go never sends an IP),
// and Caddy picks a connection policy by SNI, so the OTLP site has no
// host: as https://AGGREGATOR:OPORT, it would require a client certificate
// only of clients that send an SNI and take the others through its
// catch-all policy, and automatic HTTPS would give that loopback name the
// internal issuer rather than cert_issuer's ACME one. Without SNI, the tls
// app serves the certificate of the local address. Client authentication
// turns on strict_sni_host, which answers 421 to a Host header that is
// not the (absent) SNI; with client certificates required of every
// connection there is nothing for it to guard, so it is off.
const automateAggregatorCaddyfile = `{
GLOBAL	servers AGGREGATOR:OPORT {
		strict_sni_host insecure_off
	}
	applog {
		syslog tls/AGGREGATOR:RPORT {
			app via_syslog
			tls {
				certificate_automate AGGREGATOR
				trust_pool file ROOT
			}
		}
		facility shop
	}
	log received {
		include applog.via_syslog
		output file {{.Dir}}/received.log
		level DEBUG
		format json
	}
	log otlp {
		include applog.shop
		output file {{.Dir}}/otlp.log
		level DEBUG
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	respond "ok"
}

https://:OPORT {
	bind AGGREGATOR
	tls {
		client_auth {
			mode require_and_verify
			trust_pool file ROOT
		}
	}
	handle /otlp/* {
		log_ingest shop
	}
}
`

// automateEdgeCaddyfile forwards app `shop` to the aggregator by two
// writers, each spooled and presenting a client certificate from its tls
// app: tls (format syslog) to the syslog receiver, and otlp (format json)
// to the OTLP door.
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
	log tootlp {
		include applog.shop
		level DEBUG
		output otlp OTLPURL {
			ca ROOT
			client_cert_automate EDGE
			spool {{.Dir}}/spool-otlp
			backoff 100ms 1s
		}
		format json
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
// configured by hand: a Caddy runs an ACME server (Caddy's PKI); the
// aggregator Caddy's syslog tls/ receiver gets its certificate from it
// over ACME (certificate_automate) and trusts its root for clients
// (trust_pool), as does its log_ingest OTLP door (client_auth); the edge
// Caddy forwards every record by both its tls writer and its otlp writer,
// each presenting a client certificate from the same ACME CA
// (client_cert_automate). Under load, both certificates are renewed
// (short lifetimes): every record arrives by each path, exactly once,
// and both doors serve the renewed certificate without a restart. Then
// the aggregator restarts, so that the edge connects again with its
// renewed certificate: nothing is lost on either path.
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
	oport := freeTCPPort(t, automateAggregatorIP+":0")
	otlpURL := fmt.Sprintf("https://%s:%d/otlp/v1/logs", automateAggregatorIP, oport)
	fill := func(cfg, bind string) string {
		cfg = strings.Replace(cfg, "GLOBAL", automateGlobal, 1)
		return strings.NewReplacer("BIND", bind, "ACMEDIR", fmt.Sprintf("https://127.0.0.1:%d/acme/applog/directory", ca.HTTPPort),
			"ROOT", root, "AGGREGATOR", automateAggregatorIP, "EDGE", automateEdgeIP, "RPORT", fmt.Sprint(rport),
			"OPORT", fmt.Sprint(oport), "OTLPURL", otlpURL).Replace(cfg)
	}
	agg := startCaddy(t, fill(automateAggregatorCaddyfile, automateAggregatorIP))
	rootPool, err := tlsconfig.CertPool(root)
	if err != nil {
		t.Fatal(err)
	}
	aggAddr := fmt.Sprintf("%s:%d", automateAggregatorIP, rport)
	otlpAddr := fmt.Sprintf("%s:%d", automateAggregatorIP, oport)
	var first, otlpFirst *big.Int
	if !tlsWaitFor(30*time.Second, func() bool { first, err = automateServedSerial(aggAddr, rootPool); return err == nil }) {
		t.Fatalf("the receiver served no certificate from the ACME CA: %v\naggregator:\n%s", err, agg.Output())
	}
	// The OTLP door serves the same certificate: verified against ROOT, so
	// from the ACME CA, not from Caddy's internal one.
	if otlpFirst, err = automateServedSerial(otlpAddr, rootPool); err != nil || otlpFirst.Cmp(first) != 0 {
		t.Fatalf("the OTLP door serves %x (%v), want the receiver's certificate %x from the ACME CA\naggregator:\n%s", otlpFirst, err, first, agg.Output())
	}

	// trust_pool and client_auth are enforced.
	automateRefusesRogue(t, aggAddr, rootPool)
	automateOTLPRefusesRogue(t, agg, otlpURL, rootPool)

	edge := startCaddy(t, fill(automateEdgeCaddyfile, automateEdgeIP))
	paths := []automatePath{
		{name: "syslog", peer: automatePeer(t, agg, rport, "received.log"),
			writer: func() (tlsWriterSnap, bool) { return tlsWriterStatus(t, edge, aggAddr) }},
		{name: "otlp", peer: automatePeer(t, agg, oport, "otlp.log"),
			writer: func() (tlsWriterSnap, bool) { return otlpWriterStatus(t, edge, otlpURL) }},
	}
	marker := tlsMarker("automate")
	load := tlsStartLoad(edge.URL("/_applog"), marker, 2, 5*time.Millisecond)
	defer load.stop()
	for _, p := range paths {
		if got := p.peer.waitArrivals(marker, 1, 60*time.Second); len(got) == 0 {
			t.Fatalf("%s: no record reached the aggregator over mutual TLS\nedge:\n%s\naggregator:\n%s", p.name, edge.Output(), agg.Output())
		}
	}
	edgeCert := filepath.Join(edge.Dir, "data", "caddy", "certificates", "*", automateEdgeIP, automateEdgeIP+".crt")
	edgeFirst, err := automateFileSerial(edgeCert)
	if err != nil {
		t.Fatal(err)
	}

	// Both certificates renew under load (about 30 s after issuance), and
	// both doors serve the aggregator's renewed one.
	var renewed, otlpRenewed, edgeRenewed *big.Int
	if !tlsWaitFor(90*time.Second, func() bool {
		renewed, _ = automateServedSerial(aggAddr, rootPool)
		otlpRenewed, _ = automateServedSerial(otlpAddr, rootPool)
		edgeRenewed, _ = automateFileSerial(edgeCert)
		return renewed != nil && renewed.Cmp(first) != 0 && otlpRenewed != nil && otlpRenewed.Cmp(renewed) == 0 &&
			edgeRenewed != nil && edgeRenewed.Cmp(edgeFirst) != 0
	}) {
		t.Fatalf("not renewed in 90 s: receiver serves %x (first %x), OTLP door %x, edge's certificate %x (first %x)\naggregator:\n%s",
			renewed, first, otlpRenewed, edgeRenewed, edgeFirst, agg.Output())
	}
	time.Sleep(2 * time.Second)
	accepted := load.acceptedNow()
	for _, p := range paths {
		ty := tlsWaitAll(p.peer, marker, seqsUpTo(load, accepted), 30*time.Second)
		if miss := ty.missing(seqsUpTo(load, accepted)); len(miss) > 0 {
			t.Errorf("%s: renewal: %d records accepted before it have not arrived: %s", p.name, len(miss), tlsShort(miss))
		}
		if dups, extra := ty.duplicates(); extra > 0 {
			t.Errorf("%s: renewal: %d records arrived twice: %s", p.name, len(dups), tlsShort(dups))
		}
		t.Logf("%s: renewal: %d records had arrived", p.name, len(ty.counts))
	}
	t.Logf("renewal: aggregator's certificate %x -> %x, edge's %x -> %x", first, renewed, edgeFirst, edgeRenewed)

	// The aggregator restarts on its storage: both doors serve the renewed
	// certificate, and the edge's new connections present its renewed one.
	agg.stop()
	before := make([][]int, len(paths))
	for i, p := range paths {
		before[i] = tlsCount(p.peer.outs(), marker).order
	}
	agg.launch(t)
	for _, addr := range []string{aggAddr, otlpAddr} {
		var afterRestart *big.Int
		if !tlsWaitFor(30*time.Second, func() bool { afterRestart, err = automateServedSerial(addr, rootPool); return err == nil }) {
			t.Fatalf("the restarted aggregator served no certificate on %s: %v\n%s", addr, err, agg.Output())
		}
		if afterRestart.Cmp(first) == 0 {
			t.Errorf("the restarted aggregator serves its first certificate %x on %s, not a renewed one", first, addr)
		}
	}
	time.Sleep(3 * time.Second)
	all, failed := load.stop()
	if failed > 0 {
		t.Errorf("%d requests failed: %v", failed, load.lastErr)
	}
	for i, p := range paths {
		ty := tlsWaitAll(p.peer, marker, all, 60*time.Second)
		t.Logf("%s: %d accepted, %d arrivals of %d distinct records", p.name, len(all), len(ty.order), len(ty.counts))
		if miss := ty.missing(all); len(miss) > 0 {
			t.Errorf("%s: lost %d accepted records: %s\nedge:\n%s", p.name, len(miss), tlsShort(miss), edge.Output())
		}
		if len(ty.order) <= len(before[i]) {
			t.Errorf("%s: nothing arrived after the aggregator restarted (%d before, %d in all)", p.name, len(before[i]), len(ty.order))
		}
		tlsCheckDuplicates(t, p.name+": aggregator restart", before[i], ty)
		var ws tlsWriterSnap
		if !tlsWaitFor(5*time.Second, func() bool { ws, _ = p.writer(); return ws.SpoolDepth == 0 }) {
			t.Errorf("%s: the edge's spool not empty after delivery: %+v", p.name, ws)
		}
	}
	// Each door files its records under its own app.
	for file, app := range map[string]string{"received.log": "via_syslog", "otlp.log": "shop"} {
		for _, l := range readLines(t, filepath.Join(agg.Dir, file)) {
			if l["app"] != app {
				t.Fatalf("%s: a record of app %v, want %s: %v", file, l["app"], app, l)
			}
		}
	}
}

// automatePath is one way the edge's records take to the aggregator: the
// file its door writes them to, and the edge's writer on its status page.
type automatePath struct {
	name   string
	peer   *tlsPeer
	writer func() (tlsWriterSnap, bool)
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

// automateOTLPRefusesRogue checks that the OTLP door at url refuses the
// handshake of a client whose certificate another CA issued, and of one
// with no certificate, and that the record each tried to export is not
// written by the aggregator s.
func automateOTLPRefusesRogue(t *testing.T, s *server, url string, pool *x509.CertPool) {
	t.Helper()
	rogue := testpki.NewCA(t, "applog rogue CA")
	marker := tlsMarker("otlp-rogue")
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
	}{
		{"a client certificate from another CA", []tls.Certificate{rogue.Issue(t, "rogue", x509.ExtKeyUsageClientAuth)}},
		{"no client certificate", nil},
	} {
		export, err := proto.Marshal(&collogs.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
				Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "shop"}}}}},
			ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{
				Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: marker + " " + tc.name}}}}}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: tc.certs}}
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Post(url, "application/x-protobuf", bytes.NewReader(export))
		tr.CloseIdleConnections()
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: the OTLP door answered %s, want it to refuse the handshake", tc.name, resp.Status)
		} else if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: %v, want the OTLP door to refuse the certificate", tc.name, err)
		}
	}
	time.Sleep(500 * time.Millisecond) // what was taken would be written by now
	for _, line := range tlsFileLines(filepath.Join(s.Dir, "otlp.log")) {
		if strings.Contains(line, marker) {
			t.Errorf("a refused client's record was written: %s", line)
		}
	}
}

// automatePeer reads what the doors of Caddy s have written to file
// (in its folder), a line per record; port is the door's.
func automatePeer(t *testing.T, s *server, port int, file string) *tlsPeer {
	return &tlsPeer{name: "caddy", port: port, t: t, outs: func() []tlsArrival {
		var out []tlsArrival
		for _, line := range tlsFileLines(filepath.Join(s.Dir, file)) {
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
	if ty := tlsWaitAll(automatePeer(t, s, rport, "received.log"), marker, want, 30*time.Second); len(ty.counts) != n || len(ty.order) != n {
		t.Fatalf("%d arrivals of %d distinct records, want each of %d once\n%s", len(ty.order), len(ty.counts), n, s.Output())
	}
	for _, l := range readLines(t, filepath.Join(s.Dir, "received.log")) {
		if l["app"] != "relayed" {
			t.Fatalf("a record of app %v, want relayed: %v", l["app"], l)
		}
	}
}
